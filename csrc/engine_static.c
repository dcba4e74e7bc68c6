/* The engine's half of the static middleware (http.middleware: [static]):
 * the cheap check made for every GET/HEAD, before the request goes to PHP.
 *
 * fastrr/http/middleware/static.py stays the one place that decides: the
 * engine only asks it (a "static" event, engine_pool.py) when a file may be
 * there, so a miss costs one stat() and no Python. The check must therefore
 * say "maybe" for every request StaticMiddleware.request() would serve (it
 * may say "maybe" more often: Python then answers static_miss and the
 * request goes to PHP). It follows static.py step by step:
 *
 *  - GET or HEAD, case as sent;
 *  - RequestInfo.path: an absolute-form target ("://" anywhere in it) keeps
 *    what follows the first "/" after "://", else "/"; cut at the first "?",
 *    then at the first "#"; unquote_to_bytes() of the str, which is the
 *    latin-1 decoded target encoded as UTF-8 (so a raw byte >= 0x80 becomes
 *    two bytes) and %XX (any case) decoded;
 *  - a NUL in the result: no;
 *  - posixpath.normpath("/" + path): "" and "." segments dropped, ".." drops
 *    the one before it (none left: dropped); nothing left: no (the root);
 *  - file_extension(): from the last "." of the whole normalised path,
 *    lowercased. An extension with bytes >= 0x80 is left to Python (its
 *    lower() is Unicode's); otherwise ASCII lowercase is Python's. In
 *    forbid: no; allow not empty and not in it: no;
 *  - stat(root + path) is a regular file (symlinks followed; Python checks
 *    where they lead with realpath).
 */
#include "engine.h"

#include <sys/stat.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ext (ASCII lowercased as compared) in a NUL-separated list. */
static int ext_in(const char *list, size_t n, const unsigned char *ext, size_t len)
{
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(p);
        if (l == len) {
            size_t j = 0;
            while (j < len) {
                unsigned char c = ext[j];
                if (c >= 'A' && c <= 'Z')
                    c = (unsigned char)(c + 32);
                if ((unsigned char)p[j] != c)
                    break;
                j++;
            }
            if (j == len)
                return 1;
        }
        p += l + 1;
    }
    return 0;
}

/* 1: a regular file may answer this request (ask Python); 0: go to PHP. */
int fe_static_candidate(fe_engine *e, const RequestObject *r)
{
    const fe_config *cfg = &e->cfg;
    if (cfg->static_root == NULL)
        return 0;
    const unsigned char *head = fr_req_head(r);
    const unsigned char *m = head + r->method_off;
    if (!((r->method_len == 3 && memcmp(m, "GET", 3) == 0) ||
          (r->method_len == 4 && memcmp(m, "HEAD", 4) == 0)))
        return 0;
    const unsigned char *t = head + r->target_off;
    size_t n = r->target_len;
    /* RequestInfo.path */
    for (size_t i = 0; i + 3 <= n; i++) {
        if (t[i] == ':' && t[i + 1] == '/' && t[i + 2] == '/') {
            const unsigned char *rest = t + i + 3, *end = t + n;
            const unsigned char *slash = memchr(rest, '/', (size_t)(end - rest));
            if (slash == NULL)
                return 0; /* "/": the root */
            t = slash;
            n = (size_t)(end - slash);
            break;
        }
    }
    const unsigned char *q = memchr(t, '?', n);
    if (q != NULL)
        n = (size_t)(q - t);
    q = memchr(t, '#', n);
    if (q != NULL)
        n = (size_t)(q - t);
    fr_buf *d = &e->st_dec;
    d->len = 0;
    if (fr_buf_reserve(d, 2 * n + 1) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = t[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = hexval(t[i + 1])) >= 0 && (lo = hexval(t[i + 2])) >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return 0;
            fr_buf_putc(d, (char)c);
            i += 2;
            continue;
        }
        if (c >= 0x80) { /* latin-1 -> UTF-8 */
            fr_buf_putc(d, (char)(0xC0 | (c >> 6)));
            fr_buf_putc(d, (char)(0x80 | (c & 0x3F)));
            continue;
        }
        if (c == 0)
            return 0;
        fr_buf_putc(d, (char)c);
    }
    /* root + normpath */
    fr_buf *p = &e->st_path;
    p->len = 0;
    if (fr_buf_reserve(p, cfg->static_root_len + d->len + 2) < 0)
        return 0;
    fr_buf_put(p, cfg->static_root, cfg->static_root_len);
    size_t base = p->len;
    const unsigned char *s = (const unsigned char *)d->data, *end = s + d->len;
    while (s < end) {
        const unsigned char *slash = memchr(s, '/', (size_t)(end - s));
        const unsigned char *seg_end = slash ? slash : end;
        size_t len = (size_t)(seg_end - s);
        if (len == 0 || (len == 1 && s[0] == '.')) {
            /* dropped */
        }
        else if (len == 2 && s[0] == '.' && s[1] == '.') {
            while (p->len > base && p->data[p->len - 1] != '/')
                p->len--;
            if (p->len > base)
                p->len--; /* the "/" before it */
        }
        else {
            fr_buf_putc(p, '/');
            fr_buf_put(p, s, len);
        }
        s = seg_end + (slash ? 1 : 0);
    }
    if (p->len == base)
        return 0;
    /* file_extension() */
    if (cfg->static_nforbid || cfg->static_nallow) {
        size_t dot = p->len;
        while (dot > base && p->data[dot - 1] != '.')
            dot--;
        const unsigned char *ext = (const unsigned char *)p->data + (dot > base ? dot - 1 : p->len);
        size_t elen = dot > base ? p->len - (dot - 1) : 0;
        int ascii = 1;
        for (size_t i = 0; i < elen; i++)
            if (ext[i] >= 0x80)
                ascii = 0;
        if (ascii) {
            if (ext_in(cfg->static_forbid, cfg->static_nforbid, ext, elen))
                return 0;
            if (cfg->static_nallow && !ext_in(cfg->static_allow, cfg->static_nallow, ext, elen))
                return 0;
        }
    }
    p->data[p->len] = '\0'; /* reserved above */
    struct stat st;
    if (stat(p->data, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    return 1;
}
