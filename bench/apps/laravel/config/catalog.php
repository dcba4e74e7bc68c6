<?php

// What the benchmark route reads: through the Catalog service and config().
return [
    'currency' => 'EUR',
    'vat_percent' => 19,
];
