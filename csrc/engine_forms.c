/* application/x-www-form-urlencoded -> RoadRunner's JSON data tree, with
 * exactly the semantics of fastrr/http/forms.py (which the Python front
 * uses), GIL-free for the engine thread:
 *
 *  1. the body is decoded as UTF-8 with Python's "replace" rule;
 *  2. urllib.parse.parse_qsl(keep_blank_values=True, max_num_fields=10000):
 *     split on '&', empty fields skipped, name/value split at the first
 *     '=', '+' -> ' ', then %XX decoding of each ASCII run, whose bytes are
 *     decoded as UTF-8 ("replace") on their own;
 *  3. values grouped by their exact key, keys in order of first
 *     appearance; each key split PHP-style (`a[b][]`: path a, b; list);
 *     more than 127 path segments -> error; a key ending in [] takes the
 *     list of its values, any other key its last value;
 *  4. walking a path through something that is not an object, or putting a
 *     value where an object is -> "invalid multiple values to key 'k'";
 *     replacing a value keeps its position (a Python dict assignment);
 *  5. json.dumps(ensure_ascii=False, separators=(",", ":")).
 *
 * Everything lives in the scratch buffers (offsets, never pointers, since
 * they grow): the decoded text, an arena of decoded names and values, the
 * pairs, the groups with a hash on the name, and the tree with a hash on
 * (parent, key). */
#include "engine.h"

#define MAX_FIELDS 10000
#define MAX_DEPTH 127
#define NONE UINT32_MAX

typedef struct {
    uint32_t noff, nlen, voff, vlen; /* into the arena */
    uint32_t next;                   /* next value of the same key */
} pair_t;

typedef struct {
    uint32_t noff, nlen;
    uint32_t first, last, count; /* pairs */
} group_t;

enum { N_DICT, N_STR, N_LIST };

typedef struct {
    uint32_t koff, klen; /* key, in the arena */
    uint32_t parent, first, last, next;
    uint32_t val; /* N_STR: a pair; N_LIST: a group */
    int type;
} node_t;

static uint32_t hash_bytes(uint32_t h, const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 16777619u;
    return h;
}

/* Percent-decode an ASCII run into s->run, then append it to the arena
 * as Python's bytes.decode("utf-8", "replace"). */
static int unquote_ascii(fe_form_scratch *s, const unsigned char *p, size_t n)
{
    s->run.len = 0;
    if (fr_buf_reserve(&s->run, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n + 0 + 0 && i + 2 <= n - 1 + 0 &&
            fr_hexval[p[i + 1]] >= 0 && fr_hexval[p[i + 2]] >= 0) {
            s->run.data[s->run.len++] = (char)(fr_hexval[p[i + 1]] * 16 + fr_hexval[p[i + 2]]);
            i += 2;
        }
        else
            s->run.data[s->run.len++] = (char)(p[i] == '+' ? ' ' : p[i]);
    }
    return fe_utf8_replace(&s->arena, (const unsigned char *)s->run.data, s->run.len);
}

/* unquote_plus of [p, p+n) (valid UTF-8) appended to the arena. */
static int unquote_plus(fe_form_scratch *s, const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        if (p[i] >= 0x80) {
            while (j < n && p[j] >= 0x80)
                j++;
            if (fr_buf_append(&s->arena, p + i, j - i) < 0)
                return -1;
        }
        else {
            while (j < n && p[j] < 0x80)
                j++;
            if (unquote_ascii(s, p + i, j - i) < 0)
                return -1;
        }
        i = j;
    }
    return 0;
}

static int form_error_key(fr_buf *err, const fe_form_scratch *s, const group_t *g)
{
    if (FR_BUF_LIT(err, "invalid multiple values to key ") < 0)
        return -1;
    if (fe_repr_str(err, (const unsigned char *)s->arena.data + g->noff, g->nlen) < 0)
        return -1;
    return 1;
}

/* ------------------------------------------------------------ the tree */

typedef struct {
    fe_form_scratch *s;
    size_t cap; /* slots in nhash */
    uint32_t count;
} tree_t;

static node_t *nodes(fe_form_scratch *s) { return (node_t *)s->nodes.data; }
static uint32_t *nslots(fe_form_scratch *s) { return (uint32_t *)s->nhash.data; }

static uint32_t node_hash(const fe_form_scratch *s, uint32_t parent, uint32_t koff, uint32_t klen)
{
    return hash_bytes(2166136261u ^ (parent * 2654435761u),
                      (const unsigned char *)s->arena.data + koff, klen);
}

static int rehash(tree_t *t, size_t cap)
{
    fe_form_scratch *s = t->s;
    s->nhash.len = 0;
    if (fr_buf_reserve(&s->nhash, cap * sizeof(uint32_t)) < 0)
        return -1;
    memset(s->nhash.data, 0xFF, cap * sizeof(uint32_t));
    t->cap = cap;
    uint32_t *slots = nslots(s);
    node_t *nd = nodes(s);
    for (uint32_t i = 1; i < t->count; i++) { /* node 0 (the root) is never looked up */
        size_t k = node_hash(s, nd[i].parent, nd[i].koff, nd[i].klen) & (cap - 1);
        while (slots[k] != NONE)
            k = (k + 1) & (cap - 1);
        slots[k] = i;
    }
    return 0;
}

static uint32_t lookup(tree_t *t, uint32_t parent, uint32_t koff, uint32_t klen, size_t *slot)
{
    fe_form_scratch *s = t->s;
    const unsigned char *key = (const unsigned char *)s->arena.data + koff;
    uint32_t *slots = nslots(s);
    node_t *nd = nodes(s);
    size_t k = node_hash(s, parent, koff, klen) & (t->cap - 1);
    for (;;) {
        uint32_t i = slots[k];
        if (i == NONE) {
            *slot = k;
            return NONE;
        }
        if (nd[i].parent == parent && nd[i].klen == klen &&
            memcmp(s->arena.data + nd[i].koff, key, klen) == 0)
            return i;
        k = (k + 1) & (t->cap - 1);
    }
}

/* A new node under parent, appended to its children (and to the hash at
 * `slot`, from the lookup that missed). NONE when out of memory. */
static uint32_t add_node(tree_t *t, uint32_t parent, uint32_t koff, uint32_t klen, size_t slot)
{
    fe_form_scratch *s = t->s;
    if ((size_t)(t->count + 1) * 2 > t->cap) {
        if (rehash(t, t->cap * 2) < 0)
            return NONE;
        lookup(t, parent, koff, klen, &slot);
    }
    if (fr_buf_reserve(&s->nodes, sizeof(node_t)) < 0)
        return NONE;
    uint32_t i = t->count++;
    s->nodes.len += sizeof(node_t);
    node_t *nd = nodes(s);
    nd[i] = (node_t){koff, klen, parent, NONE, NONE, NONE, NONE, N_DICT};
    if (nd[parent].last == NONE)
        nd[parent].first = i;
    else
        nd[nd[parent].last].next = i;
    nd[parent].last = i;
    nslots(s)[slot] = i;
    return i;
}

/* ---------------------------------------------------------- JSON output */

/* json.dumps(ensure_ascii=False) of a string (valid UTF-8). */
static int put_string(fr_buf *out, const unsigned char *p, size_t n)
{
    if (fr_buf_reserve(out, 6 * n + 2) < 0)
        return -1;
    fr_buf_putc(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            fr_buf_putc(out, (char)c);
            continue;
        }
        fr_buf_putc(out, '\\');
        switch (c) {
        case '"': fr_buf_putc(out, '"'); break;
        case '\\': fr_buf_putc(out, '\\'); break;
        case '\b': fr_buf_putc(out, 'b'); break;
        case '\f': fr_buf_putc(out, 'f'); break;
        case '\n': fr_buf_putc(out, 'n'); break;
        case '\r': fr_buf_putc(out, 'r'); break;
        case '\t': fr_buf_putc(out, 't'); break;
        default:
            fr_buf_put(out, "u00", 3);
            fr_buf_putc(out, "0123456789abcdef"[c >> 4]);
            fr_buf_putc(out, "0123456789abcdef"[c & 15]);
        }
    }
    fr_buf_putc(out, '"');
    return 0;
}

static int emit(fe_form_scratch *s, uint32_t i, fr_buf *out)
{
    const node_t n = nodes(s)[i];
    const pair_t *pairs = (const pair_t *)s->pairs.data;
    const unsigned char *arena = (const unsigned char *)s->arena.data;
    if (n.type == N_STR) {
        const pair_t *p = &pairs[n.val];
        return put_string(out, arena + p->voff, p->vlen);
    }
    if (n.type == N_LIST) {
        const group_t *g = &((const group_t *)s->groups.data)[n.val];
        if (FR_BUF_LIT(out, "[") < 0)
            return -1;
        for (uint32_t v = g->first; v != NONE; v = pairs[v].next) {
            if (v != g->first && FR_BUF_LIT(out, ",") < 0)
                return -1;
            if (put_string(out, arena + pairs[v].voff, pairs[v].vlen) < 0)
                return -1;
        }
        return FR_BUF_LIT(out, "]");
    }
    if (FR_BUF_LIT(out, "{") < 0)
        return -1;
    for (uint32_t c = n.first; c != NONE; c = nodes(s)[c].next) {
        const node_t *ch = &nodes(s)[c];
        if (c != n.first && FR_BUF_LIT(out, ",") < 0)
            return -1;
        if (put_string(out, arena + ch->koff, ch->klen) < 0 || FR_BUF_LIT(out, ":") < 0)
            return -1;
        if (emit(s, c, out) < 0)
            return -1;
    }
    return FR_BUF_LIT(out, "}");
}

/* --------------------------------------------------------------- steps */

/* parse_qsl: fill pairs and the arena from the decoded text. 1 on the
 * field-count error. */
static int split_pairs(fe_form_scratch *s, fr_buf *err)
{
    const unsigned char *d = (const unsigned char *)s->decoded.data;
    size_t n = s->decoded.len;
    if (n > 0) {
        size_t fields = 1;
        for (size_t i = 0; i < n; i++)
            fields += d[i] == '&';
        if (fields > MAX_FIELDS) {
            if (FR_BUF_LIT(err, "Max number of fields exceeded") < 0)
                return -1;
            return 1;
        }
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && d[j] != '&')
            j++;
        if (j > i) {
            const unsigned char *eq = memchr(d + i, '=', j - i);
            size_t nend = eq ? (size_t)(eq - d) : j;
            pair_t p;
            p.noff = (uint32_t)s->arena.len;
            if (unquote_plus(s, d + i, nend - i) < 0)
                return -1;
            p.nlen = (uint32_t)(s->arena.len - p.noff);
            p.voff = (uint32_t)s->arena.len;
            if (eq && unquote_plus(s, d + nend + 1, j - nend - 1) < 0)
                return -1;
            p.vlen = (uint32_t)(s->arena.len - p.voff);
            p.next = NONE;
            if (fr_buf_append(&s->pairs, &p, sizeof(p)) < 0)
                return -1;
        }
        i = j + 1;
    }
    return 0;
}

/* Group the pairs by name, names in order of first appearance. */
static int group_pairs(fe_form_scratch *s)
{
    size_t np = s->pairs.len / sizeof(pair_t);
    size_t cap = 16;
    while (cap < 2 * np)
        cap *= 2;
    s->ghash.len = 0;
    if (fr_buf_reserve(&s->ghash, cap * sizeof(uint32_t)) < 0)
        return -1;
    memset(s->ghash.data, 0xFF, cap * sizeof(uint32_t));
    for (size_t i = 0; i < np; i++) {
        pair_t *pairs = (pair_t *)s->pairs.data;
        uint32_t *slots = (uint32_t *)s->ghash.data;
        const unsigned char *name = (const unsigned char *)s->arena.data + pairs[i].noff;
        size_t k = hash_bytes(2166136261u, name, pairs[i].nlen) & (cap - 1);
        for (;;) {
            uint32_t g = slots[k];
            if (g == NONE) {
                group_t ng = {pairs[i].noff, pairs[i].nlen, (uint32_t)i, (uint32_t)i, 1};
                slots[k] = (uint32_t)(s->groups.len / sizeof(group_t));
                if (fr_buf_append(&s->groups, &ng, sizeof(ng)) < 0)
                    return -1;
                break;
            }
            group_t *gr = &((group_t *)s->groups.data)[g];
            if (gr->nlen == pairs[i].nlen && memcmp(s->arena.data + gr->noff, name, gr->nlen) == 0) {
                pairs[gr->last].next = (uint32_t)i;
                gr->last = (uint32_t)i;
                gr->count++;
                break;
            }
            k = (k + 1) & (cap - 1);
        }
    }
    return 0;
}

/* forms.split_key: the path segments of a key (offsets into the arena)
 * and whether it ends in "[]". */
static int split_key(fe_form_scratch *s, uint32_t off, uint32_t len, size_t *nsegs, int *is_list)
{
    const unsigned char *k = (const unsigned char *)s->arena.data + off;
    s->segs.len = 0;
    const unsigned char *br = memchr(k, '[', len);
    uint32_t seg[2] = {off, br ? (uint32_t)(br - k) : len};
    if (fr_buf_append(&s->segs, seg, sizeof(seg)) < 0)
        return -1;
    if (br != NULL) {
        size_t pos = (size_t)(br - k);
        while (pos < len && k[pos] == '[') {
            const unsigned char *close = memchr(k + pos, ']', len - pos);
            if (close == NULL)
                break;
            size_t end = (size_t)(close - k);
            uint32_t sg[2] = {off + (uint32_t)pos + 1, (uint32_t)(end - pos - 1)};
            if (fr_buf_append(&s->segs, sg, sizeof(sg)) < 0)
                return -1;
            pos = end + 1;
        }
    }
    size_t n = s->segs.len / sizeof(seg);
    uint32_t *segs = (uint32_t *)s->segs.data;
    *is_list = n > 1 && segs[2 * (n - 1) + 1] == 0;
    if (*is_list)
        n--;
    *nsegs = n;
    return 0;
}

static int build_tree(fe_form_scratch *s, fr_buf *err)
{
    tree_t t = {s, 0, 1};
    s->nodes.len = 0;
    if (fr_buf_reserve(&s->nodes, sizeof(node_t)) < 0)
        return -1;
    nodes(s)[0] = (node_t){0, 0, NONE, NONE, NONE, NONE, NONE, N_DICT};
    s->nodes.len = sizeof(node_t);
    if (rehash(&t, 64) < 0)
        return -1;
    size_t ng = s->groups.len / sizeof(group_t);
    for (size_t gi = 0; gi < ng; gi++) {
        group_t g = ((group_t *)s->groups.data)[gi];
        size_t nsegs;
        int is_list;
        if (split_key(s, g.noff, g.nlen, &nsegs, &is_list) < 0)
            return -1;
        if (nsegs > MAX_DEPTH) {
            if (fe_buf_printf(err, "form key nests deeper than %d levels", MAX_DEPTH) < 0)
                return -1;
            return 1;
        }
        uint32_t node = 0;
        size_t slot;
        for (size_t k = 0; k + 1 < nsegs; k++) {
            const uint32_t *sg = (const uint32_t *)s->segs.data + 2 * k;
            uint32_t child = lookup(&t, node, sg[0], sg[1], &slot);
            if (child == NONE) {
                child = add_node(&t, node, sg[0], sg[1], slot);
                if (child == NONE)
                    return -1;
            }
            else if (nodes(s)[child].type != N_DICT)
                return form_error_key(err, s, &g);
            node = child;
        }
        const uint32_t *leaf = (const uint32_t *)s->segs.data + 2 * (nsegs - 1);
        uint32_t at = lookup(&t, node, leaf[0], leaf[1], &slot);
        if (at != NONE && nodes(s)[at].type == N_DICT)
            return form_error_key(err, s, &g);
        if (at == NONE) {
            at = add_node(&t, node, leaf[0], leaf[1], slot);
            if (at == NONE)
                return -1;
        }
        node_t *nd = &nodes(s)[at];
        nd->type = is_list ? N_LIST : N_STR;
        nd->val = is_list ? (uint32_t)gi : g.last;
    }
    return 0;
}

int fe_form_json(fe_form_scratch *s, const unsigned char *body, size_t n, fr_buf *out, fr_buf *err)
{
    int rc;
    s->decoded.len = s->arena.len = s->pairs.len = s->groups.len = 0;
    /* never NULL data: empty keys make memchr/memcmp look at 0 bytes of it */
    if (fr_buf_reserve(&s->decoded, 1) < 0 || fr_buf_reserve(&s->arena, 1) < 0 ||
        fr_buf_reserve(&s->run, 1) < 0)
        return -1;
    if (n > (size_t)UINT32_MAX / 4) { /* offsets are 32-bit: far beyond any form */
        if (FR_BUF_LIT(err, "Max number of fields exceeded") < 0)
            return -1;
        return 1;
    }
    if (fe_utf8_replace(&s->decoded, body, n) < 0)
        return -1;
    if ((rc = split_pairs(s, err)) != 0)
        return rc;
    if (group_pairs(s) < 0)
        return -1;
    if ((rc = build_tree(s, err)) != 0)
        return rc;
    return emit(s, 0, out);
}

void fe_form_scratch_free(fe_form_scratch *s)
{
    fr_buf *bufs[] = {&s->decoded, &s->arena, &s->pairs, &s->groups, &s->ghash,
                      &s->nodes,   &s->nhash, &s->segs,  &s->run};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        fr_buf_trim(bufs[i], 0);
}
