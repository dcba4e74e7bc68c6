"""`fastrr bench`: fastrr against nginx + php-fpm, side by side, on the same PHP apps.

The flow, one module per step:

    env       what the machine is, which Debian packages are missing, CPU layout
    apps      the four apps (bench/apps/, php/demo/) and how to load and check them
    servers   private nginx + php-fpm and fastrr instances in a temp dir
    procs     process trees: start, CPU seconds from /proc, memory peaks, stop
    wrk       the load generator (wrk-scripts/) and its output (JSON from done())
    stats     medians, min–max, paired ratios
    runner    the measurement plan, warm-ups, interleaved repeats, progress bar
    jobs      `--apps jobs`: the jobs plugin (memory, boltdb × 1, 2, 4 PHP consumers), push to ack
    report    terminal table, Markdown, JSON; plot: PNGs (matplotlib, optional)

Timings never decide pass/fail of a unit test; tests/bench/ checks this logic only.
"""
