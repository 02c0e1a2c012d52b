/*
 * node._fastprep: the common Push batch's decode, checks, canonical bodies and digests, in C
 * (optional: see setup.py; node.service._batch._prepare_flat runs the same in Python without it).
 *
 *   flat_batch(pairs, limit, hash_bodies) -> (datas, bodies, digests or None), or None
 *   flat_columns(pairs, limit, hash_bodies, allowed, record_type) -> (columns, odd, bodies, digests), or None
 *   blake2b_16(data) -> hashlib.blake2b(data, digest_size=16).digest()   (for the tests)
 *   push_pairs(data) -> [(id, payload), ...] of an encoded PushRequest, or None
 *   push_head(data) -> (dataset, number of records) of one push_pairs reads, or None
 *   gb11643_check(v) -> the GB 11643 check character of v[:17]
 *
 * pairs        a list (or tuple) of (id, payload), as node.service._batch._prepare_flat takes them
 * limit        the largest payload, in bytes (node.validation.MAX_RECORD_BYTES)
 * hash_bodies  true: digests[i] = blake2b(bodies[i], digest_size=16); false: digests is None
 *
 * datas[i]     a new dict equal to orjson.loads(payload) (keys in the payload's order)
 * bodies[i]    orjson.dumps(datas[i], option=OPT_SORT_KEYS): compact, keys sorted by their UTF-8
 *              bytes (which is code point order), strings and integers copied as they came
 *
 * None means "not the common batch": the caller takes the Python path, which gives every
 * verdict and error. It is the answer unless EVERY pair is an exact tuple of an exact str id
 * matching [A-Za-z0-9][A-Za-z0-9._~-]{0,127} (node.store.RECORD_ID_RE) and an exact bytes
 * payload of at most ``limit`` bytes that is a JSON object of this restricted form:
 *
 *   - JSON whitespace (space, \t, \n, \r) around tokens, nothing but whitespace after the "}"
 *     (so no UTF-8 BOM either, which orjson refuses);
 *   - keys and string values without any backslash escape or control character (< 0x20), in
 *     strict UTF-8 (no overlong form, no surrogate, nothing beyond U+10FFFF): orjson writes such a
 *     string back byte for byte (it escapes only '"', '\\' and control characters);
 *   - values: a string, an integer -?(0|[1-9][0-9]*) of at most 18 digits and not "-0" (orjson
 *     reads a longer one as a float, and writes -0 as 0), true, false, null;
 *   - no duplicate key (orjson keeps the last; the Python path decides);
 *   - an "id" member that is a string equal to the pair's id.
 *
 * flat_columns: flat_batch's answer (the same pairs taken, the same bodies and digests) without a
 * dict per record, for node.service._batch._prepare_columns (Validator.unclear_rows):
 *   columns    {"id": [the pairs' ids], key: [value or None, one per record], ...}: a column for each
 *              key in the frozenset ``allowed`` that some record has, holding what datas[i][key] would
 *              be, None where record i lacks the key or has it null
 *   odd        the positions (ascending) of the records whose verdict the columns do not tell: one
 *              with a key neither "id", "type" nor in ``allowed``, or whose "type" is neither null nor
 *              the string ``record_type`` (a type absent or equal to the record type is what
 *              node.validation._api._declares lets the compiled check decide)
 *
 * Only wrong argument types raise (TypeError), and MemoryError; no input bytes make this crash.
 * The pairs are copied to a tuple first, so nothing the allocator may run (a finaliser) can
 * change what is read. BLAKE2b is RFC 7693's, digest length 16, no key (tests/node/
 * test_fastprep.py holds it to hashlib, and everything else to orjson and the Python path).
 *
 * push_pairs(data): what node.transport.grpc._push.push_pairs(PushRequest.FromString(data)) gives,
 * read straight off the protobuf wire format, or None whenever anything is unusual (the caller
 * then parses with upb, which gives its verdict or DecodeError): data not exactly bytes, a tag of
 * more than one byte, a field number other than PushRequest's 1 dataset and 2 records and
 * Record's 1 id, 2 payload, 3 version, 4 deleted, 5 modified_us, a wire type that does not fit
 * the field, a varint not in its shortest form or beyond 64 bits, a length beyond the buffer, a
 * string (dataset, id) that is not strict UTF-8. A Record field there twice: the last one counts
 * (proto3, as upb); a missing id or payload is "" / b"".
 *
 * gb11643_check(v): node.validation._native's _ID_CHECK[2 * int(v[:17], 13) % 11], counted in C
 * for an exact str whose first 17 characters are ASCII digits (the weighted digit sum mod 11);
 * any other v is handed to that Python function (_gb11643_digits_check_py), with its result or error.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- BLAKE2b (RFC 7693) ---------------------------------------------------------------- */

static const uint64_t blake2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL, 0xA54FF53A5F1D36F1ULL,
    0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL, 0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL,
};

static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t load64_le(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) | ((uint64_t)p[7] << 56);
}

#define ROTR64(x, n) (((x) >> (n)) | ((x) << (64 - (n))))

#define B2B_G(a, b, c, d, x, y)          \
    do {                                 \
        v[a] = v[a] + v[b] + (x);        \
        v[d] = ROTR64(v[d] ^ v[a], 32);  \
        v[c] = v[c] + v[d];              \
        v[b] = ROTR64(v[b] ^ v[c], 24);  \
        v[a] = v[a] + v[b] + (y);        \
        v[d] = ROTR64(v[d] ^ v[a], 16);  \
        v[c] = v[c] + v[d];              \
        v[b] = ROTR64(v[b] ^ v[c], 63);  \
    } while (0)

#define B2B_ROUND(r)                                                        \
    do {                                                                    \
        const uint8_t *s = blake2b_sigma[r];                                \
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);                               \
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);                               \
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);                              \
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);                              \
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);                              \
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);                            \
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);                             \
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);                             \
    } while (0)

/* F: one 128-byte block; t the bytes hashed so far (a message here is far below 2**64 bytes) */
static void blake2b_compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= t;
    /* v[13] ^= the high word of the counter: 0 */
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) m[i] = load64_le(block + 8 * i);
    B2B_ROUND(0);
    B2B_ROUND(1);
    B2B_ROUND(2);
    B2B_ROUND(3);
    B2B_ROUND(4);
    B2B_ROUND(5);
    B2B_ROUND(6);
    B2B_ROUND(7);
    B2B_ROUND(8);
    B2B_ROUND(9);
    B2B_ROUND(10);
    B2B_ROUND(11);
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* hashlib.blake2b(data, digest_size=16).digest() */
static void blake2b_16(const uint8_t *data, size_t n, uint8_t out[16]) {
    uint64_t h[8];
    uint8_t block[128];
    uint64_t t = 0;
    memcpy(h, blake2b_iv, sizeof(h));
    h[0] ^= 0x01010000ULL ^ 16; /* parameter block: fanout 1, depth 1, no key, digest length 16 */
    while (n > 128) {
        t += 128;
        blake2b_compress(h, data, t, 0);
        data += 128;
        n -= 128;
    }
    memset(block, 0, sizeof(block));
    if (n) memcpy(block, data, n);
    t += n;
    blake2b_compress(h, block, t, 1);
    for (int i = 0; i < 16; i++) out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
}

/* ---- the restricted JSON object ---------------------------------------------------------- */

enum { V_STR = 1, V_INT, V_TRUE, V_FALSE, V_NULL };

typedef struct {
    const char *key; /* a key's content (without the quotes) */
    size_t klen;
    const char *val; /* a string's content (without the quotes), or the token */
    size_t vlen;
    long long ival;
    int vtype;
    int kascii, vascii;
} Member;

/* bytes in a string: 0 ASCII to copy, 1 the closing quote, 2 refused (a backslash, a control
 * character), 3 non-ASCII (utf8_seq decides) */
static unsigned char str_class[256];
/* JSON whitespace */
static unsigned char is_ws[256];
/* the characters of a record id: 1 allowed after the first (. _ ~ -); 3 alphanumeric, allowed first too */
static unsigned char id_class[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++) {
        unsigned char k;
        if (c < 0x20 || c == '\\') k = 2;
        else if (c == '"') k = 1;
        else if (c < 0x80) k = 0;
        else k = 3;
        str_class[c] = k;
        is_ws[c] = c == ' ' || c == '\t' || c == '\n' || c == '\r';
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) id_class[c] = 3;
        else if (c == '.' || c == '_' || c == '~' || c == '-') id_class[c] = 1;
        else id_class[c] = 0;
    }
}

/* the length of the strict UTF-8 sequence (no overlong form, no surrogate, nothing beyond U+10FFFF)
 * that starts with the non-ASCII byte s[i], within s[0..n); 0 when there is none */
static inline size_t utf8_seq(const unsigned char *s, size_t n, size_t i) {
    unsigned char c = s[i];
    if (c >= 0xC2 && c <= 0xDF) {
        if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[i + 1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[i + 1] > 0x9F) return 0; /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[i + 1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[i + 1] > 0x8F) return 0; /* beyond U+10FFFF */
        return 4;
    }
    return 0; /* a continuation byte, C0/C1 (overlong), F5..FF */
}

/* a string at s[*pos] == '"': its content (no escape, no control character, strict UTF-8) */
static int scan_string(const unsigned char *s, size_t n, size_t *pos, const char **out, size_t *outlen,
                       int *ascii) {
    size_t i = *pos + 1, start = i, step;
    int all_ascii = 1;
    for (;;) {
        if (i >= n) return 0;
        unsigned char k = str_class[s[i]];
        if (k == 0) {
            i++;
            continue;
        }
        if (k == 1) break;
        if (k == 2 || (step = utf8_seq(s, n, i)) == 0) return 0;
        all_ascii = 0;
        i += step;
    }
    *out = (const char *)s + start;
    *outlen = i - start;
    *ascii = all_ascii;
    *pos = i + 1;
    return 1;
}

typedef struct {
    Member *members;
    size_t cap;
} Scratch;

/* 1: parsed into sc->members[0..*count); 0: not the restricted form; -1: out of memory */
static int parse_object(const unsigned char *s, size_t n, Scratch *sc, size_t *count) {
    size_t i = 0, m = 0;
    while (i < n && is_ws[s[i]]) i++;
    if (i >= n || s[i] != '{') return 0;
    i++;
    while (i < n && is_ws[s[i]]) i++;
    if (i < n && s[i] == '}') {
        i++;
    } else {
        for (;;) {
            Member *mb;
            if (i >= n || s[i] != '"') return 0;
            if (m == sc->cap) {
                size_t cap = sc->cap ? sc->cap * 2 : 32;
                Member *grown = PyMem_Realloc(sc->members, cap * sizeof(Member));
                if (grown == NULL) return -1;
                sc->members = grown;
                sc->cap = cap;
            }
            mb = &sc->members[m++];
            if (!scan_string(s, n, &i, &mb->key, &mb->klen, &mb->kascii)) return 0;
            while (i < n && is_ws[s[i]]) i++;
            if (i >= n || s[i] != ':') return 0;
            i++;
            while (i < n && is_ws[s[i]]) i++;
            if (i >= n) return 0;
            unsigned char c = s[i];
            if (c == '"') {
                mb->vtype = V_STR;
                if (!scan_string(s, n, &i, &mb->val, &mb->vlen, &mb->vascii)) return 0;
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                size_t start = i, digits = 0;
                int neg = c == '-';
                long long v = 0;
                if (neg) i++;
                if (i >= n || s[i] < '0' || s[i] > '9') return 0;
                if (s[i] == '0') {
                    if (neg) return 0; /* "-0": orjson writes it back as 0 */
                    i++;               /* "01", "0.5", ...: refused at the delimiter below */
                } else {
                    while (i < n && s[i] >= '0' && s[i] <= '9') {
                        if (++digits > 18) return 0; /* orjson reads a long one as a float */
                        v = v * 10 + (s[i] - '0');
                        i++;
                    }
                }
                mb->vtype = V_INT;
                mb->ival = neg ? -v : v;
                mb->val = (const char *)s + start;
                mb->vlen = i - start;
            } else if (c == 't' && n - i >= 4 && memcmp(s + i, "true", 4) == 0) {
                mb->vtype = V_TRUE;
                mb->val = (const char *)s + i;
                mb->vlen = 4;
                i += 4;
            } else if (c == 'f' && n - i >= 5 && memcmp(s + i, "false", 5) == 0) {
                mb->vtype = V_FALSE;
                mb->val = (const char *)s + i;
                mb->vlen = 5;
                i += 5;
            } else if (c == 'n' && n - i >= 4 && memcmp(s + i, "null", 4) == 0) {
                mb->vtype = V_NULL;
                mb->val = (const char *)s + i;
                mb->vlen = 4;
                i += 4;
            } else {
                return 0; /* a float's start, an object, an array, anything else */
            }
            while (i < n && is_ws[s[i]]) i++;
            if (i >= n) return 0;
            if (s[i] == ',') {
                i++;
                while (i < n && is_ws[s[i]]) i++;
                continue;
            }
            if (s[i] != '}') return 0;
            i++;
            break;
        }
    }
    while (i < n && is_ws[s[i]]) i++;
    if (i != n) return 0;
    *count = m;
    return 1;
}

static inline int key_cmp(const Member *a, const Member *b) {
    size_t k = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, k);
    if (c) return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static int key_cmp_q(const void *a, const void *b) {
    return key_cmp(*(const Member *const *)a, *(const Member *const *)b);
}

/* the members in key order (by UTF-8 bytes); 0 when a key is there twice */
static int sort_keys(Member *members, size_t m, Member **order) {
    for (size_t j = 0; j < m; j++) order[j] = &members[j];
    if (m <= 24) {
        for (size_t j = 1; j < m; j++) {
            Member *x = order[j];
            size_t k = j;
            while (k > 0 && key_cmp(order[k - 1], x) > 0) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = x;
        }
    } else {
        qsort(order, m, sizeof(Member *), key_cmp_q);
    }
    for (size_t j = 1; j < m; j++)
        if (key_cmp(order[j - 1], order[j]) == 0) return 0;
    return 1;
}

static int id_ok(PyObject *rid, const char **out, size_t *outlen) {
    if (!PyUnicode_CheckExact(rid)) return 0;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(rid) < 0) return -1;
#endif
    if (!PyUnicode_IS_ASCII(rid)) return 0;
    Py_ssize_t len = PyUnicode_GET_LENGTH(rid);
    const unsigned char *s = PyUnicode_1BYTE_DATA(rid);
    if (len < 1 || len > 128 || id_class[s[0]] != 3) return 0;
    for (Py_ssize_t j = 1; j < len; j++)
        if (!id_class[s[j]]) return 0;
    *out = (const char *)s;
    *outlen = (size_t)len;
    return 1;
}

static PyObject *make_str(const char *s, size_t len, int ascii) {
    if (ascii) {
        PyObject *u = PyUnicode_New((Py_ssize_t)len, 127);
        if (u != NULL) memcpy(PyUnicode_1BYTE_DATA(u), s, len);
        return u;
    }
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, NULL);
}

/* what the record before had at each position: its key (and string value) as text and object,
 * reused when this record has the same bytes there (a batch's records mostly share their keys) */
typedef struct {
    const char *key;
    size_t klen;
    PyObject *kobj;
    const char *val; /* a string value, or NULL */
    size_t vlen;
    PyObject *vobj;
    int kind;          /* flat_columns: what the key is (K_*) */
    PyObject *column;  /* flat_columns: the key's column (K_COLUMN; the columns dict holds it) */
} Slot;

typedef struct {
    Slot *slots;
    size_t count, cap;
    size_t *order; /* the record before's key order: positions */
    Member **sorted;
    size_t sorted_cap;
} Cache;

static void cache_clear(Cache *c) {
    for (size_t j = 0; j < c->cap; j++) { /* slots past count are NULL, or left so by an error */
        Py_XDECREF(c->slots[j].kobj);
        Py_XDECREF(c->slots[j].vobj);
    }
    PyMem_Free(c->slots);
    PyMem_Free(c->order);
    PyMem_Free(c->sorted);
}

static int cache_reserve(Cache *c, size_t m) {
    if (m <= c->cap) return 0;
    size_t cap = c->cap ? c->cap : 32;
    while (cap < m) cap *= 2;
    Slot *slots = PyMem_Realloc(c->slots, cap * sizeof(Slot));
    if (slots == NULL) return -1;
    c->slots = slots;
    memset(c->slots + c->cap, 0, (cap - c->cap) * sizeof(Slot));
    size_t *order = PyMem_Realloc(c->order, cap * sizeof(size_t));
    if (order == NULL) return -1;
    c->order = order;
    Member **sorted = PyMem_Realloc(c->sorted, cap * sizeof(Member *));
    if (sorted == NULL) return -1;
    c->sorted = sorted;
    c->cap = cap;
    return 0;
}

/* c->order: the members' key order (by UTF-8 bytes), kept from the record before when it had the
 * same keys in the same places (*same). 1 done, 0 a key is there twice, -1 out of memory */
static int key_order(Member *members, size_t m, Cache *c, int *same_out) {
    int same = m == c->count;
    size_t j;
    if (cache_reserve(c, m) < 0) return -1;
    for (j = 0; j < m && same; j++)
        same = members[j].klen == c->slots[j].klen && memcmp(members[j].key, c->slots[j].key, members[j].klen) == 0;
    if (!same) { /* sort, and look for a duplicate key: then the record takes the Python path */
        if (!sort_keys(members, m, c->sorted)) return 0;
        for (j = 0; j < m; j++) c->order[j] = (size_t)(c->sorted[j] - members);
    }
    *same_out = same;
    return 1;
}

/* the canonical body of the members (in the order ``order``) and (hash) its digest; 0 done, -1 a
 * Python error */
static int write_body(const Member *members, size_t m, const size_t *order, int hash, PyObject **body_out,
                      PyObject **digest_out) {
    size_t j, size = m ? 1 + m * 4 : 2; /* {} and, per member, the key's quotes, ':' and ',' or '}' */
    PyObject *body;
    for (j = 0; j < m; j++)
        size += members[j].klen + members[j].vlen + (members[j].vtype == V_STR ? 2 : 0);
    body = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (body == NULL) return -1;
    char *w = PyBytes_AS_STRING(body);
    *w++ = '{';
    for (j = 0; j < m; j++) {
        const Member *mb = &members[order[j]];
        if (j) *w++ = ',';
        *w++ = '"';
        memcpy(w, mb->key, mb->klen);
        w += mb->klen;
        *w++ = '"';
        *w++ = ':';
        if (mb->vtype == V_STR) {
            *w++ = '"';
            memcpy(w, mb->val, mb->vlen);
            w += mb->vlen;
            *w++ = '"';
        } else {
            memcpy(w, mb->val, mb->vlen);
            w += mb->vlen;
        }
    }
    *w++ = '}';
    if (w != PyBytes_AS_STRING(body) + size) {
        PyErr_SetString(PyExc_SystemError, "node._fastprep: a body's size was miscounted");
        Py_DECREF(body);
        return -1;
    }
    if (hash) {
        uint8_t d[16];
        blake2b_16((const uint8_t *)PyBytes_AS_STRING(body), size, d);
        *digest_out = PyBytes_FromStringAndSize((const char *)d, 16);
        if (*digest_out == NULL) {
            Py_DECREF(body);
            return -1;
        }
    }
    *body_out = body;
    return 0;
}

/* a member's value as flat_batch's dict holds it; a string is the slot's when it has the same bytes */
static PyObject *member_value(const Member *mb, Slot *sl, int cached) {
    PyObject *val;
    switch (mb->vtype) {
    case V_STR:
        if (cached && sl->vobj != NULL && sl->vlen == mb->vlen && memcmp(sl->val, mb->val, mb->vlen) == 0)
            return Py_NewRef(sl->vobj);
        val = make_str(mb->val, mb->vlen, mb->vascii);
        if (val != NULL) {
            Py_XSETREF(sl->vobj, Py_NewRef(val));
            sl->val = mb->val;
            sl->vlen = mb->vlen;
        }
        return val;
    case V_INT:
        return PyLong_FromLongLong(mb->ival);
    case V_TRUE:
        return Py_NewRef(Py_True);
    case V_FALSE:
        return Py_NewRef(Py_False);
    default:
        return Py_NewRef(Py_None);
    }
}

/* the record's dict, canonical body and (hash) digest. 1 done, 0 not the restricted form (a
 * duplicate key), -1 a Python error */
static int build(Member *members, size_t m, Cache *c, int hash, PyObject **data_out, PyObject **body_out,
                 PyObject **digest_out) {
    int same, rc;
    size_t j;
    PyObject *data = NULL;
    rc = key_order(members, m, c, &same);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (rc == 0) return 0;
#if PY_VERSION_HEX < 0x030D0000
    data = _PyDict_NewPresized((Py_ssize_t)m); /* no resize on the way (a record has ~10 keys) */
#else
    data = PyDict_New();
#endif
    if (data == NULL) return -1;
    for (j = 0; j < m; j++) {
        Member *mb = &members[j];
        Slot *sl = &c->slots[j];
        PyObject *key, *val;
        if (same || (j < c->count && sl->klen == mb->klen && memcmp(sl->key, mb->key, mb->klen) == 0)) {
            key = Py_NewRef(sl->kobj);
        } else {
            key = make_str(mb->key, mb->klen, mb->kascii);
            if (key == NULL) goto error;
            Py_XSETREF(sl->kobj, Py_NewRef(key));
            sl->key = mb->key;
            sl->klen = mb->klen;
        }
        val = member_value(mb, sl, j < c->count);
        if (val == NULL) {
            Py_DECREF(key);
            goto error;
        }
        rc = PyDict_SetItem(data, key, val);
        Py_DECREF(key);
        Py_DECREF(val);
        if (rc < 0) goto error;
    }
    for (j = m; j < c->count; j++) { /* the record before had more members */
        Py_CLEAR(c->slots[j].kobj);
        Py_CLEAR(c->slots[j].vobj);
    }
    c->count = m;
    if (write_body(members, m, c->order, hash, body_out, digest_out) < 0) goto error;
    *data_out = data;
    return 1;
error: /* the call fails: the cache is only freed from here on */
    Py_XDECREF(data);
    return -1;
}

/* a pair (id, payload) of the restricted form, parsed into sc->members[0..*count): 1 done, 0 not
 * the restricted form (a duplicate key is found later, by key_order), -1 a Python error */
static int read_pair(PyObject *pair, Py_ssize_t limit, Scratch *sc, size_t *count) {
    PyObject *rid, *payload;
    const char *id;
    size_t idlen, m, j;
    Py_ssize_t len;
    int rc;
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) return 0;
    rid = PyTuple_GET_ITEM(pair, 0);
    payload = PyTuple_GET_ITEM(pair, 1);
    if (!PyBytes_CheckExact(payload)) return 0;
    len = PyBytes_GET_SIZE(payload);
    if (len > limit) return 0;
    rc = id_ok(rid, &id, &idlen);
    if (rc <= 0) return rc;
    rc = parse_object((const unsigned char *)PyBytes_AS_STRING(payload), (size_t)len, sc, &m);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (rc == 0) return 0;
    for (j = 0; j < m; j++) /* with no duplicate key (key_order checks), the one "id" */
        if (sc->members[j].klen == 2 && sc->members[j].key[0] == 'i' && sc->members[j].key[1] == 'd') break;
    if (j == m || sc->members[j].vtype != V_STR || sc->members[j].vlen != idlen ||
        memcmp(sc->members[j].val, id, idlen) != 0)
        return 0;
    *count = m;
    return 1;
}

/* the pairs as a tuple (a new reference: a list is copied, a snapshot nothing can change under us),
   Py_None (a new reference) for any other kind of sequence, NULL with an exception on failure */
static PyObject *pairs_tuple(PyObject *pairs) {
    if (PyTuple_CheckExact(pairs)) return Py_NewRef(pairs);
    if (PyList_CheckExact(pairs)) return PyList_AsTuple(pairs);
    return Py_NewRef(Py_None);
}

static PyObject *flat_batch(PyObject *self, PyObject *args) {
    PyObject *pairs, *items = NULL, *datas = NULL, *bodies = NULL, *digests = NULL, *result = NULL;
    Py_ssize_t limit, n, r;
    int hash;
    Scratch sc = {NULL, 0};
    Cache cache;
    memset(&cache, 0, sizeof(cache));
    (void)self;
    if (!PyArg_ParseTuple(args, "Onp:flat_batch", &pairs, &limit, &hash)) return NULL;
    items = pairs_tuple(pairs);
    if (items == NULL) return NULL;
    if (items == Py_None) return items; /* another kind of sequence: the Python path reads it */
    n = PyTuple_GET_SIZE(items);
    datas = PyList_New(n);
    bodies = PyList_New(n);
    digests = hash ? PyList_New(n) : Py_NewRef(Py_None);
    if (datas == NULL || bodies == NULL || digests == NULL) goto done;
    for (r = 0; r < n; r++) {
        PyObject *data = NULL, *body = NULL, *digest = NULL;
        size_t m;
        int rc = read_pair(PyTuple_GET_ITEM(items, r), limit, &sc, &m);
        if (rc < 0) goto done;
        if (rc == 0) goto common_not;
        rc = build(sc.members, m, &cache, hash, &data, &body, &digest);
        if (rc < 0) goto done;
        if (rc == 0) goto common_not;
        PyList_SET_ITEM(datas, r, data);
        PyList_SET_ITEM(bodies, r, body);
        if (hash) PyList_SET_ITEM(digests, r, digest);
    }
    result = PyTuple_Pack(3, datas, bodies, digests);
    goto done;
common_not:
    result = Py_NewRef(Py_None);
done:
    cache_clear(&cache);
    PyMem_Free(sc.members);
    Py_XDECREF(items);
    Py_XDECREF(datas);
    Py_XDECREF(bodies);
    Py_XDECREF(digests);
    return result;
}

/* ---- the common batch by columns ------------------------------------------------------------- */

enum { K_COLUMN = 1, K_ID, K_TYPE, K_OTHER };

typedef struct {
    PyObject *columns;  /* {key: list of n values, None where a record lacks the key} */
    PyObject *allowed;  /* the keys that get a column (a frozenset) */
    const char *rtype;  /* the record type's UTF-8 (NULL: none matches) */
    size_t rtlen;
    Py_ssize_t n;
} Columns;

/* what a key is: K_ID, K_TYPE, K_COLUMN (*column: its list, made on its first use) or K_OTHER; -1 a
 * Python error */
static int key_kind(const Member *mb, PyObject *key, Columns *cols, PyObject **column) {
    int in;
    if (mb->klen == 2 && memcmp(mb->key, "id", 2) == 0) return K_ID;
    if (mb->klen == 4 && memcmp(mb->key, "type", 4) == 0) return K_TYPE;
    in = PySet_Contains(cols->allowed, key);
    if (in < 0) return -1;
    if (!in) return K_OTHER;
    PyObject *col = PyDict_GetItemWithError(cols->columns, key);
    if (col == NULL) {
        if (PyErr_Occurred()) return -1;
        col = PyList_New(cols->n);
        if (col == NULL) return -1;
        for (Py_ssize_t k = 0; k < cols->n; k++) PyList_SET_ITEM(col, k, Py_NewRef(Py_None));
        int rc = PyDict_SetItem(cols->columns, key, col);
        Py_DECREF(col); /* the dict holds it */
        if (rc < 0) return -1;
    }
    *column = col;
    return K_COLUMN;
}

/* record r into the columns, its canonical body and (hash) digest; *odd set when its verdict cannot
 * be read from the columns (a key without a column, or a "type" that is neither null nor the record
 * type). 1 done, 0 not the restricted form (a duplicate key), -1 a Python error */
static int build_columns(Member *members, size_t m, Cache *c, Columns *cols, Py_ssize_t r, int hash,
                         PyObject **body_out, PyObject **digest_out, int *odd) {
    int same, rc;
    size_t j;
    rc = key_order(members, m, c, &same);
    if (rc < 0) {
        PyErr_NoMemory();
        return -1;
    }
    if (rc == 0) return 0;
    *odd = 0;
    for (j = 0; j < m; j++) {
        Member *mb = &members[j];
        Slot *sl = &c->slots[j];
        if (!(same || (j < c->count && sl->klen == mb->klen && memcmp(sl->key, mb->key, mb->klen) == 0))) {
            PyObject *key = make_str(mb->key, mb->klen, mb->kascii), *column = NULL;
            if (key == NULL) return -1;
            int kind = key_kind(mb, key, cols, &column);
            if (kind < 0) {
                Py_DECREF(key);
                return -1;
            }
            Py_XSETREF(sl->kobj, key);
            sl->key = mb->key;
            sl->klen = mb->klen;
            sl->kind = kind;
            sl->column = column;
        }
        switch (sl->kind) {
        case K_COLUMN:
            if (mb->vtype != V_NULL) { /* null: None, as a missing key */
                PyObject *val = member_value(mb, sl, j < c->count), *old;
                if (val == NULL) return -1;
                old = PyList_GET_ITEM(sl->column, r);
                PyList_SET_ITEM(sl->column, r, val);
                Py_DECREF(old);
            }
            break;
        case K_TYPE:
            if (!(mb->vtype == V_NULL || (mb->vtype == V_STR && cols->rtype != NULL && mb->vlen == cols->rtlen &&
                                          memcmp(mb->val, cols->rtype, mb->vlen) == 0)))
                *odd = 1;
            break;
        case K_OTHER:
            *odd = 1;
            break;
        default: /* K_ID: the pair's id (read_pair checked it) */
            break;
        }
    }
    for (j = m; j < c->count; j++) { /* the record before had more members */
        Py_CLEAR(c->slots[j].kobj);
        Py_CLEAR(c->slots[j].vobj);
    }
    c->count = m;
    if (write_body(members, m, c->order, hash, body_out, digest_out) < 0) return -1;
    return 1;
}

static PyObject *flat_columns(PyObject *self, PyObject *args) {
    PyObject *pairs, *allowed, *rtype_obj, *items = NULL, *ids = NULL, *odd = NULL, *bodies = NULL,
             *digests = NULL, *result = NULL;
    Py_ssize_t limit, n, r, rtlen;
    int hash;
    Scratch sc = {NULL, 0};
    Cache cache;
    Columns cols;
    memset(&cache, 0, sizeof(cache));
    memset(&cols, 0, sizeof(cols));
    (void)self;
    if (!PyArg_ParseTuple(args, "OnpO!U:flat_columns", &pairs, &limit, &hash, &PyFrozenSet_Type, &allowed,
                          &rtype_obj))
        return NULL;
    cols.allowed = allowed;
    cols.rtype = PyUnicode_AsUTF8AndSize(rtype_obj, &rtlen);
    if (cols.rtype == NULL) { /* a lone surrogate: no record's "type" (strict UTF-8) equals it */
        PyErr_Clear();
        rtlen = 0;
    }
    cols.rtlen = (size_t)rtlen;
    items = pairs_tuple(pairs);
    if (items == NULL) return NULL;
    if (items == Py_None) return items; /* another kind of sequence: the Python path reads it */
    n = PyTuple_GET_SIZE(items);
    cols.n = n;
    cols.columns = PyDict_New();
    ids = PyList_New(n);
    odd = PyList_New(0);
    bodies = PyList_New(n);
    digests = hash ? PyList_New(n) : Py_NewRef(Py_None);
    if (cols.columns == NULL || ids == NULL || odd == NULL || bodies == NULL || digests == NULL) goto done;
    for (r = 0; r < n; r++) {
        PyObject *pair = PyTuple_GET_ITEM(items, r), *body = NULL, *digest = NULL;
        size_t m;
        int rc = read_pair(pair, limit, &sc, &m), is_odd;
        if (rc < 0) goto done;
        if (rc == 0) goto common_not;
        rc = build_columns(sc.members, m, &cache, &cols, r, hash, &body, &digest, &is_odd);
        if (rc < 0) goto done;
        if (rc == 0) goto common_not;
        PyList_SET_ITEM(ids, r, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
        PyList_SET_ITEM(bodies, r, body);
        if (hash) PyList_SET_ITEM(digests, r, digest);
        if (is_odd) {
            PyObject *at = PyLong_FromSsize_t(r);
            if (at == NULL) goto done;
            rc = PyList_Append(odd, at);
            Py_DECREF(at);
            if (rc < 0) goto done;
        }
    }
    if (PyDict_SetItemString(cols.columns, "id", ids) < 0) goto done;
    result = PyTuple_Pack(4, cols.columns, odd, bodies, digests);
    goto done;
common_not:
    result = Py_NewRef(Py_None);
done:
    cache_clear(&cache);
    PyMem_Free(sc.members);
    Py_XDECREF(items);
    Py_XDECREF(cols.columns);
    Py_XDECREF(ids);
    Py_XDECREF(odd);
    Py_XDECREF(bodies);
    Py_XDECREF(digests);
    return result;
}

static PyObject *blake2b_16_py(PyObject *self, PyObject *arg) {
    Py_buffer view;
    uint8_t d[16];
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    blake2b_16((const uint8_t *)view.buf, (size_t)view.len, d);
    PyBuffer_Release(&view);
    return PyBytes_FromStringAndSize((const char *)d, 16);
}

/* ---- an encoded PushRequest's (id, payload) pairs ---------------------------------------- */

/* a varint at s[*pos]: 1 read (at most 10 bytes, fitting in 64 bits, in its shortest form), 0 not */
static int read_varint(const uint8_t *s, size_t n, size_t *pos, uint64_t *out) {
    size_t i = *pos;
    uint64_t v = 0;
    for (int k = 0; k < 10; k++) {
        if (i >= n) return 0;
        uint8_t b = s[i++];
        if (k == 9 && b > 1) return 0; /* beyond 64 bits (or an 11th byte) */
        v |= (uint64_t)(b & 0x7F) << (7 * k);
        if (!(b & 0x80)) {
            if (k > 0 && b == 0) return 0; /* a longer form than needed */
            *pos = i;
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* strict UTF-8 (utf8_seq), as upb checks a string */
static int utf8_ok(const uint8_t *s, size_t n, int *ascii) {
    size_t i = 0, step;
    int all_ascii = 1;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((step = utf8_seq(s, n, i)) == 0) return 0;
        all_ascii = 0;
        i += step;
    }
    *ascii = all_ascii;
    return 1;
}

typedef struct {
    const uint8_t *id, *payload;
    size_t idlen, plen;
    int ascii;
} Pair;

/* a length-delimited field's length at s[*pos], within the buffer */
static inline int read_length(const uint8_t *s, size_t n, size_t *pos, size_t *len) {
    uint64_t v;
    if (!read_varint(s, n, pos, &v) || v > n - *pos) return 0;
    *len = (size_t)v;
    return 1;
}

/* a Record (common.proto: id 1, payload 2, version 3, deleted 4, modified_us 5): 1 read, 0 anything
 * else. A field there twice: the last one counts (proto3), each string checked (upb refuses any) */
static int parse_record(const uint8_t *s, size_t n, Pair *p) {
    size_t i = 0, len;
    uint64_t v;
    p->id = p->payload = s;
    p->idlen = p->plen = 0;
    p->ascii = 1;
    while (i < n) {
        switch (s[i++]) { /* one-byte tags only: field numbers 1..15 */
        case 0x0A:        /* 1 id, length-delimited */
            if (!read_length(s, n, &i, &len) || !utf8_ok(s + i, len, &p->ascii)) return 0;
            p->id = s + i;
            p->idlen = len;
            i += len;
            break;
        case 0x12: /* 2 payload, length-delimited */
            if (!read_length(s, n, &i, &len)) return 0;
            p->payload = s + i;
            p->plen = len;
            i += len;
            break;
        case 0x18: /* 3 version, 4 deleted, 5 modified_us: varints */
        case 0x20:
        case 0x28:
            if (!read_varint(s, n, &i, &v)) return 0;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

static PyObject *push_pairs(PyObject *self, PyObject *arg) {
    const uint8_t *s;
    size_t n, i = 0, len, count = 0, cap = 0;
    Pair *pairs = NULL;
    PyObject *out = NULL;
    int ascii;
    (void)self;
    if (!PyBytes_CheckExact(arg)) Py_RETURN_NONE;
    s = (const uint8_t *)PyBytes_AS_STRING(arg);
    n = (size_t)PyBytes_GET_SIZE(arg);
    if (n > 0x7FFFFFFF) Py_RETURN_NONE; /* beyond what upb reads */
    while (i < n) {
        uint8_t tag = s[i++];
        if (tag != 0x0A && tag != 0x12) goto unusual; /* 1 dataset, 2 records; anything else */
        if (!read_length(s, n, &i, &len)) goto unusual;
        if (tag == 0x0A) {
            if (!utf8_ok(s + i, len, &ascii)) goto unusual;
        } else {
            if (count == cap) {
                size_t grown_cap = cap ? cap * 2 : 512;
                Pair *grown = PyMem_Realloc(pairs, grown_cap * sizeof(Pair));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                pairs = grown;
                cap = grown_cap;
            }
            if (!parse_record(s + i, len, &pairs[count])) goto unusual;
            count++;
        }
        i += len;
    }
    out = PyList_New((Py_ssize_t)count);
    if (out == NULL) goto done;
    for (size_t r = 0; r < count; r++) {
        PyObject *rid = make_str((const char *)pairs[r].id, pairs[r].idlen, pairs[r].ascii), *payload, *pair;
        if (rid == NULL) goto fail;
        payload = PyBytes_FromStringAndSize((const char *)pairs[r].payload, (Py_ssize_t)pairs[r].plen);
        if (payload == NULL) {
            Py_DECREF(rid);
            goto fail;
        }
        pair = PyTuple_New(2);
        if (pair == NULL) {
            Py_DECREF(rid);
            Py_DECREF(payload);
            goto fail;
        }
        PyTuple_SET_ITEM(pair, 0, rid);
        PyTuple_SET_ITEM(pair, 1, payload);
        PyList_SET_ITEM(out, (Py_ssize_t)r, pair);
    }
    goto done;
fail:
    Py_CLEAR(out);
    goto done;
unusual:
    out = Py_NewRef(Py_None);
done:
    PyMem_Free(pairs);
    return out;
}

/* push_head(data): (dataset, number of records) of an encoded PushRequest that push_pairs reads
 * (the same checks, no object per record), or None where push_pairs answers None */
static PyObject *push_head(PyObject *self, PyObject *arg) {
    const uint8_t *s, *dataset = NULL;
    size_t n, i = 0, len, count = 0, dlen = 0;
    int ascii, dascii = 1;
    Pair pair;
    (void)self;
    if (!PyBytes_CheckExact(arg)) Py_RETURN_NONE;
    s = (const uint8_t *)PyBytes_AS_STRING(arg);
    n = (size_t)PyBytes_GET_SIZE(arg);
    if (n > 0x7FFFFFFF) Py_RETURN_NONE;
    while (i < n) {
        uint8_t tag = s[i++];
        if (tag != 0x0A && tag != 0x12) Py_RETURN_NONE;
        if (!read_length(s, n, &i, &len)) Py_RETURN_NONE;
        if (tag == 0x0A) {
            if (!utf8_ok(s + i, len, &ascii)) Py_RETURN_NONE;
            dataset = s + i; /* proto3: the last one counts */
            dlen = len;
            dascii = ascii;
        } else {
            if (!parse_record(s + i, len, &pair)) Py_RETURN_NONE;
            count++;
        }
        i += len;
    }
    PyObject *name = make_str(dataset ? (const char *)dataset : "", dlen, dascii);
    if (name == NULL) return NULL;
    return Py_BuildValue("(Nn)", name, (Py_ssize_t)count);
}

/* ---- the GB 11643 check character ---------------------------------------------------------- */

static const uint8_t id_weights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
static const char id_check_chars[12] = "10X98765432";
static PyObject *id_checks[11];          /* the characters as str */
static PyObject *gb11643_py;              /* the Python function, for the general case (looked up once) */

/* any other value: node.validation._native's Python function itself (its result, its error) */
static PyObject *gb11643_general(PyObject *v) {
    if (gb11643_py == NULL) {
        PyObject *native = PyImport_ImportModule("node.validation._native");
        if (native == NULL) return NULL;
        gb11643_py = PyObject_GetAttrString(native, "_gb11643_digits_check_py");
        Py_DECREF(native);
        if (gb11643_py == NULL) return NULL;
    }
    return PyObject_CallOneArg(gb11643_py, v);
}

static PyObject *gb11643_check(PyObject *self, PyObject *v) {
    (void)self;
    if (PyUnicode_CheckExact(v)) {
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(v) < 0) return NULL;
#endif
        if (PyUnicode_GET_LENGTH(v) >= 17) {
            int kind = PyUnicode_KIND(v);
            const void *data = PyUnicode_DATA(v);
            unsigned sum = 0;
            int j;
            for (j = 0; j < 17; j++) {
                Py_UCS4 c = PyUnicode_READ(kind, data, j);
                if (c < '0' || c > '9') break;
                sum += (unsigned)(c - '0') * id_weights[j];
            }
            if (j == 17) return Py_NewRef(id_checks[sum % 11]);
        }
    }
    return gb11643_general(v);
}

static PyMethodDef methods[] = {
    {"flat_batch", flat_batch, METH_VARARGS,
     "flat_batch(pairs, limit, hash_bodies) -> (datas, bodies, digests or None), or None for any but the common "
     "batch"},
    {"flat_columns", flat_columns, METH_VARARGS,
     "flat_columns(pairs, limit, hash_bodies, allowed, record_type) -> (columns, odd, bodies, digests or None), "
     "or None for any but the common batch"},
    {"blake2b_16", blake2b_16_py, METH_O, "blake2b_16(data) -> hashlib.blake2b(data, digest_size=16).digest()"},
    {"push_pairs", push_pairs, METH_O,
     "push_pairs(data) -> [(id, payload), ...] of an encoded shulian.v1.PushRequest, or None for anything unusual"},
    {"push_head", push_head, METH_O,
     "push_head(data) -> (dataset, number of records) of an encoded PushRequest push_pairs reads, else None"},
    {"gb11643_check", gb11643_check, METH_O, "gb11643_check(v) -> the GB 11643 check character of v[:17]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "node._fastprep", "The common Push batch's prepare step, in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastprep(void) {
    init_tables();
    for (int k = 0; k < 11; k++)
        if (id_checks[k] == NULL && (id_checks[k] = PyUnicode_FromStringAndSize(id_check_chars + k, 1)) == NULL)
            return NULL;
    return PyModule_Create(&module);
}
