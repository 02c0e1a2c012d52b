/*
 * node._fastread: the outgoing-record hot path of a query, in C (optional: see setup.py).
 *
 * One call turns a page of stored records into what a provider sends:
 *
 *   encode_batch(rows, plan, fallback, digest_prefix) -> (wire, digest, evidence), or None
 *   Reader(path, busy_timeout_ms, cache_kib).encode(sql, params, fingerprint, plan, fallback, digest_prefix)
 *       -> (count, (wire, digest, evidence), last_id, last_modified_us), or None
 *   shares_sqlite(sqlite3_module_file) -> bool
 *
 * rows      list of (id: str, version: int, modified_us: int, deleted: int, body: bytes | None, ...)
 * plan      None: the payload is the stored body as it is (nothing to project), else
 *           (keys, withheld, masks): keys a tuple of item names (bytes, UTF-8) delivered in
 *           that order (an allow-list) or None (every key but ``withheld``, in the record's
 *           order); masks a tuple of (item, kind, first, last), kind 1 = redact, 2 = keep.
 * fallback  called as fallback(row) -> (id: str, payload: bytes) for a record this code does
 *           not handle itself: it is the general Python path (node.service._outgoing).
 * digest_prefix  "shulian.v1.RecordBatch" 0x00 dataset 0x00
 *
 * wire      the RecordBatch ``records`` field (2) of every record, protobuf-encoded as upb writes it
 * digest    SHA-256 of digest_prefix and, per record, id 0x00 version 0x00 ("1"|"0") 0x00
 *           len(payload) 0x00 payload (schemas/proto/shulian/v1/common.proto)
 * evidence  "id@version\n" per record (the stored ids), for the delivery evidence
 *
 * A Reader is a read connection of its own to the store (node.store._reads keeps one per
 * thread): ``encode`` runs one page query (columns id, version, modified_us, deleted, body,
 * checked) and encodes the page, stepping SQLite without the GIL and without a Python object
 * per row. It answers None as soon as a record did not pass the validator ``fingerprint``
 * names (``checked IS fingerprint``: TEXT, the same bytes): the caller then reads that page as
 * rows and validates them. A store read fails with the exception the sqlite3 module raises for
 * it (class and message), so node.store translates both paths' errors alike.
 *
 * Rows the store never writes (an id that is not UTF-8 TEXT, a negative or non-integer version,
 * a non-integer modified_us, ...; in encode_batch, anything but a tuple of str, int, int, int or
 * bool, bytes or None), and a fallback answer that is not (str, bytes), are not framed here:
 * the Reader answers None (the page comes as rows), encode_batch answers None (the caller encodes
 * the batch in Python), so the Python path writes them or raises its own error.
 *
 * The payload must be byte for byte what the Python path writes (orjson compact JSON of the
 * projected record: node.policy.Decision.projector then node.jsonenc.compact_bytes). This code
 * therefore handles only records whose body is a flat JSON object in the canonical form the
 * store writes: no whitespace, strings without any backslash escape or control character,
 * valid UTF-8, integers of at most 18 digits (no "-0"), true/false/null, no duplicate key that
 * matters, an "id" (if any) equal to the stored id. Anything else (a float, a nested value, an
 * escape, ...) goes to ``fallback``. A masked value is masked here only when it is a string, an
 * integer (masked on its decimal text, as str(int) is) or null; a "keep" rule on true/false goes
 * to ``fallback``. Keep counts are capped (KEEP_MAX, beyond any value's length). Bump
 * FASTREAD_ABI with any change of these calls (Python refuses a stale build).
 *
 * The work on the bytes, the SQLite steps, statement preparation and closing run without the GIL
 * (a Reader is marked in use meanwhile: no other thread closes or re-opens it).
 *
 * The SQLite library must be the one the sqlite3 module uses (shares_sqlite): two copies of SQLite
 * in one process must not open the same database (their POSIX locks would clash).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif
#include <openssl/sha.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#define FASTREAD_ABI 2
#define MAX_MEMBERS 256
#define MAX_KEYS 256

enum { V_STR = 1, V_INT, V_TRUE, V_FALSE, V_NULL };
enum { M_NONE = 0, M_REDACT = 1, M_KEEP = 2 };

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} Buf;

static void buf_grow_slow(Buf *b, size_t extra) {
    if (b->failed) return;
    if (extra > PY_SSIZE_T_MAX - b->len) { /* beyond what a bytes object can hold: fails as out of memory */
        b->failed = 1;
        return;
    }
    size_t need = b->len + extra, cap = b->cap ? b->cap : 4096;
    while (cap < need) cap = cap > (size_t)PY_SSIZE_T_MAX / 2 ? need : cap * 2;
    char *p = PyMem_RawRealloc(b->p, cap);
    if (p == NULL) {
        b->failed = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static inline void buf_grow(Buf *b, size_t extra) {
    if (b->len + extra > b->cap) buf_grow_slow(b, extra);
}

static inline void buf_put(Buf *b, const char *s, size_t n) {
    if (n == 0) return; /* memcpy from or to NULL is undefined even for no bytes */
    buf_grow(b, n);
    if (b->failed) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* a[0, n) == b[0, n) (memcmp, inlined for the short keys and ids of a record; reads only those bytes) */
static inline int same_bytes(const char *a, const char *b, size_t n) {
    if (n >= 8) {
        uint64_t x, y;
        for (size_t k = 0; k + 8 < n; k += 8) {
            memcpy(&x, a + k, 8);
            memcpy(&y, b + k, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x, y, xe, ye;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        memcpy(&xe, a + n - 4, 4);
        memcpy(&ye, b + n - 4, 4);
        return x == y && xe == ye;
    }
    for (size_t k = 0; k < n; k++) {
        if (a[k] != b[k]) return 0;
    }
    return 1;
}

/* s[0, n) to o, not overlapping (memcpy, inlined for the short runs of a record) */
static inline void copy_bytes(char *o, const char *s, size_t n) {
    if (n > 32) {
        memcpy(o, s, n);
    } else if (n >= 16) {
        char x[16], y[16];
        memcpy(x, s, 16);
        memcpy(y, s + n - 16, 16);
        memcpy(o, x, 16);
        memcpy(o + n - 16, y, 16);
    } else if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, s, 8);
        memcpy(&y, s + n - 8, 8);
        memcpy(o, &x, 8);
        memcpy(o + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(o, &x, 4);
        memcpy(o + n - 4, &y, 4);
    } else if (n) {
        o[0] = s[0];
        o[n / 2] = s[n / 2];
        o[n - 1] = s[n - 1];
    }
}

/* ---- the plan ------------------------------------------------------------------------------ */

/* keep counts are capped here: no string is this long, so a bigger count masks the same */
#define KEEP_MAX ((long long)1 << 40)

typedef struct {
    const char *name;
    Py_ssize_t len;
    int mask;
    long long first, last;
} Key;

typedef struct {
    int passthrough;
    int allow;  /* 1: keys is an allow-list, in output order; 0: deny-list (withheld) */
    Py_ssize_t nkeys;
    Key keys[MAX_KEYS];     /* allow-list keys, or the masked keys of a deny-list */
    Py_ssize_t nwithheld;
    Key withheld[MAX_KEYS];
} Plan;

static int plan_key(PyObject *obj, Key *k) {
    if (!PyBytes_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "plan keys must be bytes");
        return -1;
    }
    k->name = PyBytes_AS_STRING(obj);
    k->len = PyBytes_GET_SIZE(obj);
    k->mask = M_NONE;
    k->first = k->last = 0;
    return 0;
}

static inline Key *find_key(Key *keys, Py_ssize_t n, const char *name, size_t len) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((size_t)keys[i].len == len && (len == 0 || keys[i].name[0] == name[0])
            && same_bytes(keys[i].name, name, len))
            return &keys[i];
    }
    return NULL;
}

/* a keep count, capped at KEEP_MAX; -1 with an exception for a negative one */
static long long keep_count(PyObject *obj) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow < 0 || (overflow == 0 && v < 0)) {
        PyErr_SetString(PyExc_ValueError, "keep counts cannot be negative");
        return -1;
    }
    return overflow > 0 || v > KEEP_MAX ? KEEP_MAX : v;
}

/* plan holds borrowed pointers into ``obj``, which the caller keeps alive */
static int plan_parse(PyObject *obj, Plan *plan) {
    memset(plan, 0, sizeof *plan);
    if (obj == Py_None) {
        plan->passthrough = 1;
        return 0;
    }
    PyObject *keys, *withheld, *masks;
    if (!PyTuple_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "plan must be None or (keys, withheld, masks)");
        return -1;
    }
    if (!PyArg_ParseTuple(obj, "OO!O!;plan must be (keys, withheld, masks)", &keys, &PyTuple_Type, &withheld,
                          &PyTuple_Type, &masks))
        return -1;
    if (keys != Py_None) {
        if (!PyTuple_Check(keys)) {
            PyErr_SetString(PyExc_TypeError, "plan keys must be a tuple or None");
            return -1;
        }
        plan->allow = 1;
        if (PyTuple_GET_SIZE(keys) > MAX_KEYS) {
            PyErr_SetString(PyExc_ValueError, "too many plan keys");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(keys); i++) {
            if (plan_key(PyTuple_GET_ITEM(keys, i), &plan->keys[plan->nkeys++]) < 0) return -1;
        }
    }
    if (PyTuple_GET_SIZE(withheld) > MAX_KEYS || PyTuple_GET_SIZE(masks) > MAX_KEYS) {
        PyErr_SetString(PyExc_ValueError, "too many plan keys");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(withheld); i++) {
        if (plan_key(PyTuple_GET_ITEM(withheld, i), &plan->withheld[plan->nwithheld++]) < 0) return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(masks); i++) {
        PyObject *mask = PyTuple_GET_ITEM(masks, i), *name, *firstobj, *lastobj;
        int kind;
        long long first, last;
        if (!PyTuple_Check(mask)) {
            PyErr_SetString(PyExc_TypeError, "a mask is (key, kind, first, last)");
            return -1;
        }
        if (!PyArg_ParseTuple(mask, "O!iO!O!;a mask is (key, kind, first, last)", &PyBytes_Type, &name, &kind,
                              &PyLong_Type, &firstobj, &PyLong_Type, &lastobj))
            return -1;
        if ((first = keep_count(firstobj)) < 0 || (last = keep_count(lastobj)) < 0) return -1;
        if (kind != M_REDACT && kind != M_KEEP) {
            PyErr_SetString(PyExc_ValueError, "bad mask kind");
            return -1;
        }
        Key *k = find_key(plan->keys, plan->nkeys, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
        if (k == NULL) {
            if (plan->allow) continue; /* a mask on a key that is not delivered */
            if (plan->nkeys >= MAX_KEYS) {
                PyErr_SetString(PyExc_ValueError, "too many plan keys");
                return -1;
            }
            k = &plan->keys[plan->nkeys++];
            plan_key(name, k);
        }
        k->mask = kind;
        k->first = first;
        k->last = last;
    }
    return 0;
}

/* ---- scanning a canonical body --------------------------------------------------------------- */

typedef struct {
    const char *key;
    size_t klen;
    const char *val; /* a string's content (no quotes), or the token */
    size_t vlen;
    int type;
    int ascii; /* a string value: no byte >= 0x80 */
    /* which allow-list key of the plan matched this member's place in the last record, plus one (0: none, or
     * not known): tried first. Work keeps members from one record to the next; work_new clears it */
    Py_ssize_t guess;
} Member;

/* strict UTF-8 (what Python's decoder accepts): no overlong forms, no surrogates, <= U+10FFFF */
static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) { /* a run of ASCII, eight bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80) return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && s[i + 1] < 0xA0) return 0;
            if (c == 0xED && s[i + 1] > 0x9F) return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n || (s[i + 1] & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            if (c == 0xF0 && s[i + 1] < 0x90) return 0;
            if (c == 0xF4 && s[i + 1] > 0x8F) return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* byte classes inside a string: 0 anything else (UTF-8 is validated string by string),
 * 1 the closing quote, 2 not handled here (a backslash escape, a control character) */
static unsigned char string_class[256];

static void init_classes(void) {
    for (int c = 0; c < 256; c++) string_class[c] = c < 0x20 ? 2 : 0;
    string_class['"'] = 1;
    string_class['\\'] = 2;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_SCAN 1
#if defined(__SSE2__)
#include <emmintrin.h>
#define SSE2_SCAN 1
#endif
#else
#define SWAR_SCAN 0 /* elsewhere the table loop alone */
#endif

/* the bytes of the word ``w`` that end a plain string's run: *bad flags each '\\' and control
 * character, the result each '"' or bad byte, by its high bit. A borrow may flag a byte above the
 * first true one, never below it: the lowest flag of either is exact, and is in *bad only when that
 * byte is a bad one. */
static inline uint64_t string_stops(uint64_t w, uint64_t *bad) {
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    *bad = (((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w)) & HIGHS;
    return (((q - ONES) & ~q) & HIGHS) | *bad;
}

/* a string at s[*pos] == '"': its content, without escapes or control characters, valid UTF-8
 * (checked only when it has a byte >= 0x80: every byte of a body outside its strings is ASCII).
 * ``guess``: its likely length (the last record's string at this place), only ever taken when the masks
 * agree: the same length either way, known before them when right, so the work after it need not wait */
static inline __attribute__((always_inline)) int scan_string(const char *s, size_t n, size_t *pos, const char **out,
                                                             size_t *outlen, size_t guess, int *ascii) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = *pos + 1, start = i;
    uint64_t high = 0; /* the high bits of the content so far */
    /* several bytes at a time: the same stop as the table loop below, the first '"', '\\' or control
     * character (found from the masks alone: no byte is read again) */
#if SSE2_SCAN
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), control = _mm_set1_epi8(0x1f);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(u + i));
        unsigned bad = (unsigned)_mm_movemask_epi8(
            _mm_or_si128(_mm_cmpeq_epi8(v, backslash), _mm_cmpeq_epi8(_mm_min_epu8(v, control), v))); /* <= 0x1f */
        unsigned stops = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)) | bad;
        if (stops) {
            unsigned first = stops & (0 - stops);
            if (bad & first) return 0;
            high |= (unsigned)_mm_movemask_epi8(v) & (first - 1); /* the bytes before the quote */
            if (i == start && guess < 16 && first == 1u << guess)
                i += guess;
            else
                i += (size_t)__builtin_ctz(stops);
            goto quote;
        }
        high |= (unsigned)_mm_movemask_epi8(v);
        i += 16;
    }
#endif
#if SWAR_SCAN
    while (i + 8 <= n) {
        uint64_t w, stops, bad;
        memcpy(&w, u + i, 8);
        stops = string_stops(w, &bad);
        if (stops) {
            uint64_t first = stops & (0 - stops);
            if (bad & first) return 0;
            high |= w & HIGHS & (first - 1); /* the bytes before the quote */
            if (i == start && guess < 8 && first == (uint64_t)0x80 << (8 * guess))
                i += guess;
            else
                i += (size_t)__builtin_ctzll(stops) >> 3;
            goto quote;
        }
        high |= w & HIGHS;
        i += 8;
    }
#endif
    while (i < n && string_class[u[i]] == 0) high |= u[i++] & 0x80;
    if (i >= n || string_class[u[i]] != 1) return 0;
#if SWAR_SCAN
quote:
#endif
    if (high && !utf8_valid(u + start, i - start)) return 0;
    *ascii = high == 0;
    *out = s + start;
    *outlen = i - start;
    *pos = i + 1;
    return 1;
}

static int scan_members(const char *s, size_t n, Member *members, size_t *count) {
    size_t pos = 1, m = 0;
    if (n < 2 || s[0] != '{') return 0;
    /* UTF-8: each string with a byte >= 0x80 is checked as it is scanned; no other byte may be one */
    if (s[1] == '}') {
        *count = 0;
        return n == 2;
    }
    for (;;) {
        Member *mb;
        if (m >= MAX_MEMBERS || pos >= n || s[pos] != '"') return 0;
        mb = &members[m++];
        int ascii;
        if (!scan_string(s, n, &pos, &mb->key, &mb->klen, mb->klen, &ascii)) return 0;
        if (pos >= n || s[pos] != ':') return 0;
        pos++;
        if (pos >= n) return 0;
        char c = s[pos];
        if (c == '"') {
            mb->type = V_STR;
            if (!scan_string(s, n, &pos, &mb->val, &mb->vlen, mb->vlen, &mb->ascii)) return 0;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t start = pos, digits;
            if (c == '-') pos++;
            size_t dstart = pos;
            if (pos < n && s[pos] == '0') {
                pos++;
            } else if (pos < n && s[pos] >= '1' && s[pos] <= '9') {
                while (pos < n && s[pos] >= '0' && s[pos] <= '9') pos++;
            } else {
                return 0;
            }
            digits = pos - dstart;
            if (digits > 18) return 0;
            if (c == '-' && digits == 1 && s[dstart] == '0') return 0; /* -0 loads as 0 */
            mb->type = V_INT;
            mb->val = s + start;
            mb->vlen = pos - start;
        } else if (c == 't' && n - pos >= 4 && memcmp(s + pos, "true", 4) == 0) {
            mb->type = V_TRUE;
            mb->val = s + pos;
            mb->vlen = 4;
            pos += 4;
        } else if (c == 'f' && n - pos >= 5 && memcmp(s + pos, "false", 5) == 0) {
            mb->type = V_FALSE;
            mb->val = s + pos;
            mb->vlen = 5;
            pos += 5;
        } else if (c == 'n' && n - pos >= 4 && memcmp(s + pos, "null", 4) == 0) {
            mb->type = V_NULL;
            mb->val = s + pos;
            mb->vlen = 4;
            pos += 4;
        } else {
            return 0; /* nested value, float, or not JSON: the general path decides */
        }
        if (pos >= n) return 0;
        if (s[pos] == ',') {
            pos++;
            continue;
        }
        if (s[pos] == '}' && pos + 1 == n) break;
        return 0;
    }
    *count = m;
    return 1;
}

/* ---- projection and masking ------------------------------------------------------------------ */

static size_t utf8_count(const char *s, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xC0) != 0x80;
    return count;
}

/* byte offset of the code point number ``k`` (0-based) */
static size_t utf8_offset(const char *s, size_t n, size_t k) {
    size_t i = 0;
    while (i < n) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (k == 0) return i;
            k--;
        }
        i++;
    }
    return n;
}

/* n stars at o, which has room for at least 16 */
static inline char *put_stars(char *o, size_t n) {
    if (n <= 16)
        memcpy(o, "****************", 16);
    else
        memset(o, '*', n);
    return o + n;
}

/* the member's value masked by ``k`` (a masked key), written at ``o`` (room for it, four bytes more
 * and 16 to spare: see project); the end of what it wrote, or NULL: the general path must do it */
static inline char *put_masked(char *o, const Member *mb, const Key *k) {
    if (mb->type == V_NULL) { /* a missing value stays visibly missing */
        memcpy(o, "null", 4);
        return o + 4;
    }
    if (k->mask == M_REDACT) {
        memcpy(o, "\"***\"", 5);
        return o + 5;
    }
    if (mb->type != V_STR && mb->type != V_INT) return NULL; /* str(True) is "True": Python does it */
    int ascii = mb->type == V_INT || mb->ascii; /* one byte a code point */
    size_t n = ascii ? mb->vlen : utf8_count(mb->val, mb->vlen);
    size_t visible = (size_t)k->first + (size_t)k->last;
    *o++ = '"';
    if (n <= visible) {
        o = put_stars(o, n);
    } else {
        size_t head = ascii ? (size_t)k->first : utf8_offset(mb->val, mb->vlen, (size_t)k->first);
        size_t tail = ascii ? n - (size_t)k->last : utf8_offset(mb->val, mb->vlen, n - (size_t)k->last);
        copy_bytes(o, mb->val, head);
        o += head;
        o = put_stars(o, n - visible);
        copy_bytes(o, mb->val + tail, mb->vlen - tail);
        o += mb->vlen - tail;
    }
    *o++ = '"';
    return o;
}

/* a member at ``o``, masked by ``k`` (may be NULL); the end of what it wrote, or NULL as put_masked */
static inline char *put_member(char *o, const Member *mb, const Key *k) {
    if (k == NULL || k->mask == M_NONE) { /* as it is in the body, '"' key '":' value, all in one */
        size_t len = (size_t)(mb->val - mb->key) + 1 + mb->vlen + (mb->type == V_STR);
        copy_bytes(o, mb->key - 1, len);
        return o + len;
    }
    copy_bytes(o, mb->key - 1, mb->klen + 3); /* '"' key '":' */
    return put_masked(o + mb->klen + 3, mb, k);
}

/* the projected payload of one body into ``out``; 0: not handled here (``out`` is as it was) */
static int project(const Plan *plan, const char *id, size_t idlen, const char *body, size_t n, Buf *out,
                   Member *members, const Member **slots) {
    size_t count;
    if (!scan_members(body, n, members, &count)) return 0;
    for (size_t i = 0; i < count; i++) { /* the stored id and the body's id agree (the store ensures it) */
        const Member *mb = &members[i];
        if (mb->klen == 2 && mb->key[0] == 'i' && mb->key[1] == 'd') {
            if (mb->type != V_STR || mb->vlen != idlen || !same_bytes(mb->val, id, idlen)) return 0;
        }
    }
    /* the payload is at most the body and four bytes per masked member: its members are the body's,
     * each written as it is there, or masked (no longer than it was, but for two quotes around an
     * integer, and "***" for a one-digit one) */
    buf_grow(out, n + 4 * count + 2 + 16); /* and 16 to spare for put_stars */
    if (out->failed) return 0;
    char *o = out->p + out->len, *first = o + 1;
    *o++ = '{';
    if (plan->allow) {
        for (Py_ssize_t j = 0; j < plan->nkeys; j++) slots[j] = NULL;
        for (size_t i = 0; i < count; i++) {
            Member *mb = &members[i];
            Py_ssize_t g = mb->guess - 1, j;
            if (g >= 0 && g < plan->nkeys && (size_t)plan->keys[g].len == mb->klen
                && same_bytes(plan->keys[g].name, mb->key, mb->klen)) {
                j = g; /* what find_key finds: the guess was its answer for this name */
            } else {
                const Key *k = find_key((Key *)plan->keys, plan->nkeys, mb->key, mb->klen);
                mb->guess = k == NULL ? 0 : k - plan->keys + 1;
                if (k == NULL) continue;
                j = k - plan->keys;
            }
            if (slots[j] != NULL) return 0; /* a duplicate key: the last one wins in Python */
            slots[j] = &members[i];
        }
        for (Py_ssize_t j = 0; j < plan->nkeys; j++) {
            const Member *mb = slots[j];
            if (mb == NULL) continue;
            if (o != first) *o++ = ',';
            if ((o = put_member(o, mb, &plan->keys[j])) == NULL) return 0;
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            for (size_t j = 0; j < i; j++) {
                if (members[j].klen == members[i].klen && same_bytes(members[j].key, members[i].key, members[i].klen))
                    return 0;
            }
        }
        for (size_t i = 0; i < count; i++) {
            const Member *mb = &members[i];
            if (find_key((Key *)plan->withheld, plan->nwithheld, mb->key, mb->klen) != NULL) continue;
            if (o != first) *o++ = ',';
            o = put_member(o, mb, find_key((Key *)plan->keys, plan->nkeys, mb->key, mb->klen));
            if (o == NULL) return 0;
        }
    }
    *o++ = '}';
    out->len = (size_t)(o - out->p);
    return 1;
}

/* ---- the batch ------------------------------------------------------------------------------- */

typedef struct {
    const char *id;
    Py_ssize_t idlen;
    uint64_t version;
    int64_t modified;
    int deleted;
    const char *body;
    Py_ssize_t bodylen;
    /* the payload: [start, start+len) of the payload buffer, or a fallback's bytes */
    size_t start, len;
    int general;
    PyObject *fb_id, *fb_payload; /* owned: the fallback's answer */
    const char *rid;
    Py_ssize_t ridlen;
    PyObject *tuple; /* borrowed: the caller's row, if it has one */
} Row;

/* the row as the general path takes it: (id, version, modified_us, deleted, body, 1) */
static PyObject *row_tuple(const Row *r) {
    if (r->tuple != NULL) return Py_NewRef(r->tuple);
    if (r->deleted) {
        return Py_BuildValue("(s#KLiOi)", r->id, r->idlen, (unsigned long long)r->version, (long long)r->modified, 1,
                             Py_None, 1);
    }
    return Py_BuildValue("(s#KLiy#i)", r->id, r->idlen, (unsigned long long)r->version, (long long)r->modified, 0,
                         r->body, r->bodylen, 1);
}

/* the fallback answers' references (the rows themselves are the caller's) */
static void release_rows(Row *rows, Py_ssize_t n) {
    if (rows == NULL) return;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_CLEAR(rows[i].fb_id);
        Py_CLEAR(rows[i].fb_payload);
    }
}

/* one row's place in Reader.encode's page buffer: its id, and its body (kept for the general path and
 * a passthrough plan) or the place of its payload in the work's payload buffer */
typedef struct {
    size_t id, idlen, body, bodylen, payload;
    uint64_t version;
    int64_t modified;
    int deleted, general;
} Slot;

/* what one batch needs (the plan parsed with the GIL; the rest used without it) */
typedef struct {
    Plan plan;
    Member members[MAX_MEMBERS];
    const Member *slots[MAX_KEYS];
    Buf payloads, wire, digest_input, evidence;
    unsigned char digest[32];
    Buf page;       /* Reader.encode: the page's ids and kept bodies */
    Slot *pslots;   /* Reader.encode: the page's rows as read */
    size_t capslots;
    Row *rows;      /* Reader.encode: the rows to assemble */
    size_t caprows;
} Work;

/* a Work (and its buffers) is kept from one call to the next: allocating and first touching them
 * for every page cost more than filling them (with the GIL held: at most one call takes it) */
#ifndef Py_GIL_DISABLED
static Work *spare_work;
#endif
#define SPARE_BYTES ((size_t)1 << 20) /* no buffer bigger than this is kept */

static void work_release(Work *w) {
    PyMem_RawFree(w->payloads.p);
    PyMem_RawFree(w->wire.p);
    PyMem_RawFree(w->digest_input.p);
    PyMem_RawFree(w->evidence.p);
    PyMem_RawFree(w->page.p);
    PyMem_RawFree(w->pslots);
    PyMem_RawFree(w->rows);
    PyMem_RawFree(w);
}

static int work_failed(const Work *w) {
    return w->payloads.failed || w->wire.failed || w->digest_input.failed || w->evidence.failed || w->page.failed;
}

/* with the GIL held */
static void work_free(Work *w) {
    if (w == NULL) return;
#ifndef Py_GIL_DISABLED
    if (spare_work == NULL && !work_failed(w) && w->payloads.cap <= SPARE_BYTES && w->wire.cap <= SPARE_BYTES
        && w->digest_input.cap <= SPARE_BYTES && w->evidence.cap <= SPARE_BYTES && w->page.cap <= SPARE_BYTES
        && w->capslots * sizeof(Slot) <= SPARE_BYTES && w->caprows * sizeof(Row) <= SPARE_BYTES) {
        w->payloads.len = w->wire.len = w->digest_input.len = w->evidence.len = w->page.len = 0;
        spare_work = w;
        return;
    }
#endif
    work_release(w);
}

/* with the GIL held */
static Work *work_new(PyObject *planobj, const char *prefix, Py_ssize_t prefixlen) {
    Work *w = NULL;
#ifndef Py_GIL_DISABLED
    w = spare_work;
    spare_work = NULL;
#endif
    if (w == NULL && (w = PyMem_RawCalloc(1, sizeof(Work))) == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (plan_parse(planobj, &w->plan) < 0) {
        work_free(w);
        return NULL;
    }
    for (size_t i = 0; i < MAX_MEMBERS; i++) w->members[i].guess = 0; /* they were another plan's */
    buf_put(&w->digest_input, prefix, (size_t)prefixlen);
    return w;
}

/* 1. the payload of one row, if this code writes it itself (no GIL); 0: the general path must */
static int project_row(Work *w, Row *r) {
    r->rid = r->id;
    r->ridlen = r->idlen;
    if (r->deleted || w->plan.passthrough) return 1;
    r->start = w->payloads.len;
    r->general = !project(&w->plan, r->id, (size_t)r->idlen, r->body, (size_t)r->bodylen, &w->payloads, w->members,
                          w->slots);
    r->len = w->payloads.len - r->start;
    return !r->general;
}

static void reserve(Work *w, size_t rows, size_t bytes) {
    buf_grow(&w->payloads, bytes);
    buf_grow(&w->wire, bytes + rows * 32);
    buf_grow(&w->digest_input, bytes + rows * 32);
    buf_grow(&w->evidence, rows * 32 + 64);
}

/* 1. for every row; the number of rows left to the general path */
static Py_ssize_t project_rows(Work *w, Row *rows, Py_ssize_t n) {
    size_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) total += (size_t)rows[i].bodylen + (size_t)rows[i].idlen;
    reserve(w, (size_t)n, total);
    Py_ssize_t general = 0;
    for (Py_ssize_t i = 0; i < n && !w->payloads.failed; i++) general += !project_row(w, &rows[i]);
    return general;
}

/* 2. the general path (with the GIL): fallback(row) -> (id, payload). 1: an answer that only the
 * Python path can frame (an id that is not a str, or not UTF-8, a payload that is not bytes: it
 * writes or refuses it), so the caller leaves the whole batch to it */
static int general_rows(Row *rows, Py_ssize_t n, PyObject *fallback) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Row *r = &rows[i];
        if (!r->general) continue;
        PyObject *row = row_tuple(r);
        if (row == NULL) return -1;
        PyObject *answer = PyObject_CallOneArg(fallback, row);
        Py_DECREF(row);
        if (answer == NULL) return -1;
        if (!PyTuple_CheckExact(answer) || PyTuple_GET_SIZE(answer) != 2
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(answer, 0)) || !PyBytes_CheckExact(PyTuple_GET_ITEM(answer, 1))) {
            Py_DECREF(answer);
            return 1;
        }
        r->fb_id = Py_NewRef(PyTuple_GET_ITEM(answer, 0));
        r->fb_payload = Py_NewRef(PyTuple_GET_ITEM(answer, 1));
        Py_DECREF(answer);
        r->rid = PyUnicode_AsUTF8AndSize(r->fb_id, &r->ridlen);
        if (r->rid == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeError)) return -1;
            PyErr_Clear(); /* a lone surrogate */
            return 1;
        }
    }
    return 0;
}

static inline char *put_varint(char *o, uint64_t v) {
    while (v >= 0x80) {
        *o++ = (char)((v & 0x7f) | 0x80);
        v >>= 7;
    }
    *o++ = (char)v;
    return o;
}

static inline char *put_unsigned(char *o, uint64_t v) {
    if (v < 10) {
        *o = (char)('0' + v);
        return o + 1;
    }
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    copy_bytes(o, tmp + sizeof tmp - n, n);
    return o + n;
}

/* one record into the wire, the digest input and the evidence (``rid``: the id delivered, ``id``: the
 * stored one) */
static void emit(Work *w, const char *rid, size_t ridlen, const char *id, size_t idlen, uint64_t version,
                 uint64_t modified, int deleted, const char *payload, size_t plen) {
    Buf *wire = &w->wire, *digest = &w->digest_input, *evidence = &w->evidence;
    /* Record, fields in number order, proto3 defaults left out (as upb writes it) */
    size_t size = 0;
    if (ridlen) size += 1 + varint_len(ridlen) + ridlen;
    if (plen) size += 1 + varint_len(plen) + plen;
    if (version) size += 1 + varint_len(version);
    if (deleted) size += 2;
    if (modified) size += 1 + varint_len(modified);
    buf_grow(wire, 1 + 10 + size);
    /* digest: id 0x00 version 0x00 ("1"|"0") 0x00 len(payload) 0x00 payload */
    buf_grow(digest, ridlen + 1 + 20 + 3 + 20 + 1 + plen);
    /* evidence: the stored id */
    buf_grow(evidence, idlen + 1 + 20 + 1);
    if (wire->failed || digest->failed || evidence->failed) return;
    char *o = wire->p + wire->len;
    *o++ = 0x12;
    o = put_varint(o, size);
    if (ridlen) {
        *o++ = 0x0a;
        o = put_varint(o, ridlen);
        copy_bytes(o, rid, ridlen);
        o += ridlen;
    }
    if (plen) {
        *o++ = 0x12;
        o = put_varint(o, plen);
        memcpy(o, payload, plen);
        o += plen;
    }
    if (version) {
        *o++ = 0x18;
        o = put_varint(o, version);
    }
    if (deleted) {
        *o++ = 0x20;
        *o++ = 0x01;
    }
    if (modified) {
        *o++ = 0x28;
        o = put_varint(o, modified);
    }
    wire->len = (size_t)(o - wire->p);
    o = digest->p + digest->len;
    copy_bytes(o, rid, ridlen);
    o += ridlen;
    *o++ = 0;
    o = put_unsigned(o, version);
    *o++ = 0;
    *o++ = deleted ? '1' : '0';
    *o++ = 0;
    o = put_unsigned(o, plen);
    *o++ = 0;
    if (plen) memcpy(o, payload, plen);
    digest->len = (size_t)(o - digest->p) + plen;
    o = evidence->p + evidence->len;
    copy_bytes(o, id, idlen);
    o += idlen;
    *o++ = '@';
    o = put_unsigned(o, version);
    *o++ = '\n';
    evidence->len = (size_t)(o - evidence->p);
}

/* 3. the wire, the digest and the evidence (no GIL; fallback answers are only read) */
static void assemble(Work *w, Row *rows, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Row *r = &rows[i];
        const char *payload;
        size_t plen;
        if (r->deleted) {
            payload = "";
            plen = 0;
        } else if (r->general) {
            payload = PyBytes_AS_STRING(r->fb_payload);
            plen = (size_t)PyBytes_GET_SIZE(r->fb_payload);
        } else if (w->plan.passthrough) {
            payload = r->body;
            plen = (size_t)r->bodylen;
        } else {
            payload = w->payloads.p + r->start;
            plen = r->len;
        }
        emit(w, r->rid, (size_t)r->ridlen, r->id, (size_t)r->idlen, r->version, (uint64_t)r->modified, r->deleted,
             payload, plen);
    }
    if (!work_failed(w)) SHA256((const unsigned char *)w->digest_input.p, w->digest_input.len, w->digest);
}

static PyObject *work_result(Work *w) {
    if (work_failed(w)) return PyErr_NoMemory();
    return Py_BuildValue("(y#y#y#)", w->wire.p ? w->wire.p : "", (Py_ssize_t)w->wire.len, (const char *)w->digest,
                         (Py_ssize_t)32, w->evidence.p ? w->evidence.p : "", (Py_ssize_t)w->evidence.len);
}

/* 1-3 over filled-in rows (pointers into objects the caller keeps alive), with the GIL held on entry */
static PyObject *encode_rows(Work *w, Row *rows, Py_ssize_t n, PyObject *fallback) {
    Py_ssize_t general;
    Py_BEGIN_ALLOW_THREADS
    general = project_rows(w, rows, n);
    if (!general) assemble(w, rows, n);
    Py_END_ALLOW_THREADS
    if (work_failed(w)) return PyErr_NoMemory();
    if (general) {
        int answered = general_rows(rows, n, fallback);
        if (answered < 0) return NULL;
        if (answered > 0) Py_RETURN_NONE;
        Py_BEGIN_ALLOW_THREADS
        assemble(w, rows, n);
        Py_END_ALLOW_THREADS
    }
    return work_result(w);
}

static PyObject *encode_batch(PyObject *self, PyObject *args) {
    PyObject *list, *planobj, *fallback, *keep = NULL, *result = NULL;
    const char *prefix;
    Py_ssize_t prefixlen, n = 0;
    Row *rows = NULL;
    Work *w = NULL;

    if (!PyArg_ParseTuple(args, "O!OOy#:encode_batch", &PyList_Type, &list, &planobj, &fallback, &prefix, &prefixlen))
        return NULL;
    keep = PyList_GetSlice(list, 0, PyList_GET_SIZE(list)); /* our own references to the rows */
    if (keep == NULL) return NULL;
    n = PyList_GET_SIZE(keep);
    rows = PyMem_RawCalloc(n ? (size_t)n : 1, sizeof(Row));
    if (rows == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(keep, i);
        Row *r = &rows[i];
        /* anything but a row as the store reads it goes, with the whole batch, to the Python path:
         * it writes the same bytes or raises its own error (a negative version, an id that is not
         * UTF-8, a body that is not bytes, ...) */
        if (!PyTuple_CheckExact(t) || PyTuple_GET_SIZE(t) < 5) goto unusual;
        PyObject *id = PyTuple_GET_ITEM(t, 0), *version = PyTuple_GET_ITEM(t, 1),
                 *modified = PyTuple_GET_ITEM(t, 2), *deleted = PyTuple_GET_ITEM(t, 3), *body = PyTuple_GET_ITEM(t, 4);
        if (!PyUnicode_CheckExact(id) || !PyLong_CheckExact(version) || !PyLong_CheckExact(modified)
            || !(PyLong_CheckExact(deleted) || PyBool_Check(deleted)) || (body != Py_None && !PyBytes_CheckExact(body)))
            goto unusual;
        r->id = PyUnicode_AsUTF8AndSize(id, &r->idlen);
        if (r->id == NULL) goto unusual_error; /* a lone surrogate */
        r->version = PyLong_AsUnsignedLongLong(version);
        if (r->version == (unsigned long long)-1 && PyErr_Occurred()) goto unusual_error; /* not a uint64 */
        r->modified = PyLong_AsLongLong(modified);
        if (r->modified == -1 && PyErr_Occurred()) goto unusual_error; /* not an int64 */
        r->deleted = PyObject_IsTrue(deleted); /* an int or a bool: no code of the caller's runs */
        if (r->deleted < 0) goto done;
        if (body == Py_None) {
            r->deleted = 1;
        } else {
            r->body = PyBytes_AS_STRING(body);
            r->bodylen = PyBytes_GET_SIZE(body);
        }
        r->tuple = t;
    }
    w = work_new(planobj, prefix, prefixlen);
    if (w != NULL) result = encode_rows(w, rows, n, fallback);
    goto done;
unusual_error:
    if (!PyErr_ExceptionMatches(PyExc_UnicodeError) && !PyErr_ExceptionMatches(PyExc_OverflowError)) goto done;
    PyErr_Clear();
unusual:
    result = Py_NewRef(Py_None);
done:
    release_rows(rows, n);
    PyMem_RawFree(rows);
    work_free(w);
    Py_XDECREF(keep);
    return result;
}

/* ---- the store reader ------------------------------------------------------------------------ */

/*
 * Reader(path, busy_timeout_ms, cache_kib): a read connection of its own to the store, used by
 * one thread at a time (node.store keeps one per thread). Its ``encode`` runs a page query and
 * encodes the page in one call, without the GIL for the SQLite work, with no Python object per
 * row or column.
 */
#define MAX_STATEMENTS 8

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    int in_use;
    int nstmts;
    char *sql[MAX_STATEMENTS];
    sqlite3_stmt *stmts[MAX_STATEMENTS];
} Reader;

/* sqlite3's exception classes: a store read fails here as it fails on the Python path */
static PyObject *SqlError, *SqlDatabaseError, *SqlOperationalError, *SqlProgrammingError, *SqlInternalError,
    *SqlDataError, *SqlIntegrityError, *SqlInterfaceError;

/* the exception the sqlite3 module raises for ``rc`` (the class it picks, SQLite's own message) */
static PyObject *sqlite_error(sqlite3 *db, int rc) {
    PyObject *type;
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return PyErr_NoMemory();
    case SQLITE_INTERNAL:
    case SQLITE_NOTFOUND:
        type = SqlInternalError;
        break;
    case SQLITE_ERROR:
    case SQLITE_PERM:
    case SQLITE_ABORT:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_INTERRUPT:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_EMPTY:
    case SQLITE_SCHEMA:
        type = SqlOperationalError;
        break;
    case SQLITE_TOOBIG:
        type = SqlDataError;
        break;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
        type = SqlIntegrityError;
        break;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        type = SqlInterfaceError;
        break;
    default: /* SQLITE_CORRUPT, SQLITE_NOTADB, ... */
        type = SqlDatabaseError;
    }
    const char *message = db != NULL && sqlite3_errcode(db) != SQLITE_OK ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    PyObject *exc = PyObject_CallFunction(type, "s", message);
    if (exc == NULL) return NULL;
    PyObject *code = PyLong_FromLong(rc);
    if (code == NULL || PyObject_SetAttrString(exc, "sqlite_errorcode", code) < 0) {
        Py_XDECREF(code);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(code);
    PyErr_SetObject(type, exc);
    Py_DECREF(exc);
    return NULL;
}

static int reader_closed(void) {
    PyErr_SetString(SqlProgrammingError, "Cannot operate on a closed database.");
    return -1;
}

/* with the GIL held and the reader not in use; the connection is closed without the GIL (closing
 * may checkpoint the WAL), the reader marked in use meanwhile */
static void reader_finalize(Reader *self) {
    for (int i = 0; i < self->nstmts; i++) {
        sqlite3_finalize(self->stmts[i]);
        PyMem_Free(self->sql[i]);
    }
    self->nstmts = 0;
    if (self->db != NULL) {
        sqlite3 *db = self->db;
        self->db = NULL;
        self->in_use = 1;
        Py_BEGIN_ALLOW_THREADS
        sqlite3_close_v2(db);
        Py_END_ALLOW_THREADS
        self->in_use = 0;
    }
}

static void Reader_dealloc(Reader *self) {
    reader_finalize(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Reader_init(Reader *self, PyObject *args, PyObject *kwds) {
    const char *path;
    int timeout_ms, cache_kib;
    static char *names[] = {"path", "busy_timeout_ms", "cache_kib", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sii:Reader", names, &path, &timeout_ms, &cache_kib)) return -1;
    if (self->in_use) { /* __init__ again while another thread steps this connection */
        PyErr_SetString(PyExc_RuntimeError, "the store reader is in use");
        return -1;
    }
    if (cache_kib < 0) {
        PyErr_SetString(PyExc_ValueError, "cache_kib cannot be negative");
        return -1;
    }
    reader_finalize(self);
    sqlite3 *db = NULL;
    char pragma[96];
    int rc;
    PyOS_snprintf(pragma, sizeof pragma, "PRAGMA query_only=1; PRAGMA cache_size=-%d", cache_kib);
    self->in_use = 1;
    Py_BEGIN_ALLOW_THREADS
    /* no SQLITE_OPEN_CREATE: the store exists (a missing file is an error, not a new empty store) */
    rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, timeout_ms);
        rc = sqlite3_exec(db, pragma, NULL, NULL, NULL);
    }
    Py_END_ALLOW_THREADS
    self->db = db;
    self->in_use = 0;
    if (rc != SQLITE_OK) {
        sqlite_error(db, rc);
        reader_finalize(self);
        return -1;
    }
    return 0;
}

static PyObject *Reader_close(Reader *self, PyObject *unused) {
    if (self->in_use) {
        PyErr_SetString(PyExc_RuntimeError, "the store reader is in use");
        return NULL;
    }
    reader_finalize(self);
    Py_RETURN_NONE;
}

/* the prepared page query (cached); called with the GIL and ``in_use`` set, prepares without the GIL */
static sqlite3_stmt *reader_statement(Reader *self, const char *sql) {
    for (int i = 0; i < self->nstmts; i++) {
        if (strcmp(self->sql[i], sql) == 0) return self->stmts[i];
    }
    sqlite3_stmt *stmt = NULL;
    int rc;
    size_t len = strlen(sql) + 1;
    char *copy = PyMem_Malloc(len);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, sql, len);
    Py_BEGIN_ALLOW_THREADS /* reading the schema may wait for a lock */
    rc = sqlite3_prepare_v3(self->db, copy, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    Py_END_ALLOW_THREADS
    if (rc != SQLITE_OK || stmt == NULL) {
        if (rc != SQLITE_OK) {
            sqlite_error(self->db, rc);
        } else {
            PyErr_SetString(PyExc_ValueError, "the page query is empty");
        }
        sqlite3_finalize(stmt);
        PyMem_Free(copy);
        return NULL;
    }
    if (sqlite3_column_count(stmt) != 6) {
        sqlite3_finalize(stmt);
        PyMem_Free(copy);
        PyErr_SetString(PyExc_ValueError, "a page query selects (id, version, modified_us, deleted, body, checked)");
        return NULL;
    }
    if (self->nstmts == MAX_STATEMENTS) { /* forget the oldest */
        sqlite3_finalize(self->stmts[0]);
        PyMem_Free(self->sql[0]);
        memmove(self->stmts, self->stmts + 1, sizeof(self->stmts[0]) * (MAX_STATEMENTS - 1));
        memmove(self->sql, self->sql + 1, sizeof(self->sql[0]) * (MAX_STATEMENTS - 1));
        self->nstmts--;
    }
    self->sql[self->nstmts] = copy;
    self->stmts[self->nstmts++] = stmt;
    return stmt;
}

static int reader_bind(Reader *self, sqlite3_stmt *stmt, PyObject *params) {
    Py_ssize_t n = PyTuple_GET_SIZE(params);
    if (n != sqlite3_bind_parameter_count(stmt)) {
        PyErr_Format(PyExc_ValueError, "the page query takes %d parameters, got %zd",
                     sqlite3_bind_parameter_count(stmt), n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyTuple_GET_ITEM(params, i);
        int rc;
        if (v == Py_None) {
            rc = sqlite3_bind_null(stmt, (int)i + 1);
        } else if (PyLong_Check(v)) {
            long long x = PyLong_AsLongLong(v);
            if (x == -1 && PyErr_Occurred()) return -1;
            rc = sqlite3_bind_int64(stmt, (int)i + 1, x);
        } else if (PyUnicode_Check(v)) {
            Py_ssize_t len;
            const char *text = PyUnicode_AsUTF8AndSize(v, &len);
            if (text == NULL) return -1;
            rc = sqlite3_bind_text64(stmt, (int)i + 1, text, (sqlite3_uint64)len, SQLITE_TRANSIENT, SQLITE_UTF8);
        } else if (PyBytes_Check(v)) { /* as sqlite3 binds it (a walk after an id stored as a BLOB) */
            rc = sqlite3_bind_blob64(stmt, (int)i + 1, PyBytes_AS_STRING(v), (sqlite3_uint64)PyBytes_GET_SIZE(v),
                                     SQLITE_TRANSIENT);
        } else if (PyFloat_Check(v)) {
            rc = sqlite3_bind_double(stmt, (int)i + 1, PyFloat_AS_DOUBLE(v));
        } else {
            PyErr_SetString(PyExc_TypeError, "page query parameters are int, float, str, bytes or None");
            return -1;
        }
        if (rc != SQLITE_OK) {
            sqlite_error(self->db, rc);
            return -1;
        }
    }
    return 0;
}

/* a row as the store writes it: id TEXT, version, modified_us and deleted INTEGER, version not
 * negative, body TEXT, BLOB or NULL. Anything else is left to the Python path (with the page).
 * ``col``: the row's values (sqlite3_column_value), read before any conversion. */
static int usual_row(sqlite3_value **col, int *body, sqlite3_int64 *version) {
    *body = sqlite3_value_type(col[4]);
    return sqlite3_value_type(col[0]) == SQLITE_TEXT && sqlite3_value_type(col[1]) == SQLITE_INTEGER
        && sqlite3_value_type(col[2]) == SQLITE_INTEGER && sqlite3_value_type(col[3]) == SQLITE_INTEGER
        && (*body == SQLITE_TEXT || *body == SQLITE_BLOB || *body == SQLITE_NULL)
        && (*version = sqlite3_value_int64(col[1])) >= 0;
}

static PyObject *Reader_encode(Reader *self, PyObject *args) {
    const char *sql, *fingerprint, *prefix;
    Py_ssize_t fplen, prefixlen;
    PyObject *params, *planobj, *fallback, *result = NULL, *encoded = NULL;
    if (!PyArg_ParseTuple(args, "sO!s#OOy#:encode", &sql, &PyTuple_Type, &params, &fingerprint, &fplen, &planobj,
                          &fallback, &prefix, &prefixlen))
        return NULL;
    if (self->db == NULL) {
        reader_closed();
        return NULL;
    }
    if (self->in_use) {
        PyErr_SetString(PyExc_RuntimeError, "the store reader is in use by another thread");
        return NULL;
    }
    Work *w = work_new(planobj, prefix, prefixlen);
    if (w == NULL) return NULL;
    self->in_use = 1; /* from here on no other thread closes or re-opens the connection */
    sqlite3_stmt *stmt = reader_statement(self, sql);
    if (stmt == NULL) {
        self->in_use = 0;
        work_free(w);
        return NULL;
    }
    if (reader_bind(self, stmt, params) < 0) {
        sqlite3_clear_bindings(stmt);
        self->in_use = 0;
        work_free(w);
        return NULL;
    }

    Buf *page = &w->page;
    /* streamed: the rows already in the wire, the digest and the evidence, each as it was read (all of
     * them up to the first one left to the general path; those from there on are assembled at the end) */
    size_t nslots = 0, streamed = 0, nrows = 0;
    /* rows_path: a row did not pass the validator, or is not as the store writes it: the caller
     * reads the page as rows */
    int rc = SQLITE_OK, rows_path = 0, nomem = 0;
    Py_ssize_t general = 0;
    Py_BEGIN_ALLOW_THREADS
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        /* each column's value once, read with sqlite3_value_* (what sqlite3_column_* does, less its per-call
         * locking and error bookkeeping). These values are "unprotected": the same thing on a connection
         * without a mutex (SQLITE_OPEN_NOMUTEX, one thread at a time), as this one is */
        sqlite3_value *col[6];
        int body;
        sqlite3_int64 version;
        for (int c = 0; c < 6; c++) col[c] = sqlite3_column_value(stmt, c);
        if (!usual_row(col, &body, &version)) {
            rows_path = 1;
            break;
        }
        if (nslots == w->capslots) {
            size_t cap = w->capslots ? w->capslots * 2 : 512;
            Slot *grown = PyMem_RawRealloc(w->pslots, cap * sizeof(Slot));
            if (grown == NULL) {
                nomem = 1;
                break;
            }
            w->pslots = grown;
            w->capslots = cap;
        }
        Slot *s = &w->pslots[nslots++];
        Row row = {0};
        row.id = (const char *)sqlite3_value_text(col[0]);
        row.idlen = sqlite3_value_bytes(col[0]);
        if (row.id == NULL) { /* TEXT: out of memory */
            nomem = 1;
            break;
        }
        if (!utf8_valid((const unsigned char *)row.id, (size_t)row.idlen)) { /* Python cannot read it */
            rows_path = 1;
            break;
        }
        s->idlen = (size_t)row.idlen;
        s->id = page->len;
        buf_put(page, row.id, s->idlen);
        s->version = (uint64_t)version;
        s->modified = sqlite3_value_int64(col[2]);
        s->deleted = sqlite3_value_int64(col[3]) != 0 || body == SQLITE_NULL;
        s->body = page->len;
        s->bodylen = 0;
        s->payload = 0;
        s->general = 0;
        if (!s->deleted) {
            /* ``checked IS ?`` on the Python path: TEXT, the same bytes */
            const char *checked = sqlite3_value_type(col[5]) == SQLITE_TEXT
                ? (const char *)sqlite3_value_text(col[5]) : NULL;
            if (checked == NULL || (size_t)sqlite3_value_bytes(col[5]) != (size_t)fplen
                || !same_bytes(checked, fingerprint, (size_t)fplen)) {
                rows_path = 1; /* the caller reads this page row by row (and validates) */
                break;
            }
            /* the body's bytes as they are stored (what CAST(body AS BLOB) reads) */
            row.body = (const char *)sqlite3_value_blob(col[4]);
            row.bodylen = sqlite3_value_bytes(col[4]);
            if (row.body == NULL) {
                if (row.bodylen != 0) {
                    nomem = 1;
                    break;
                }
                row.body = "";
            }
            if (nslots == 1) { /* a page is usually full and its records alike: grow once, up to 1 MiB */
                size_t guess = (size_t)row.bodylen * 512;
                reserve(w, 512, guess < ((size_t)1 << 20) ? guess : ((size_t)1 << 20));
            }
            /* the payload straight from SQLite's row; the body itself is kept only when needed later */
            if (project_row(w, &row)) {
                s->payload = row.start;
                s->bodylen = row.len;
            } else {
                s->general = 1;
            }
        }
        if (streamed == nslots - 1 && !s->general) { /* no row before this one waits for the general path */
            const char *payload = "";
            size_t plen = 0;
            if (!s->deleted && w->plan.passthrough) {
                payload = row.body;
                plen = (size_t)row.bodylen;
            } else if (!s->deleted) {
                payload = w->payloads.p + s->payload;
                plen = s->bodylen;
            }
            emit(w, row.id, s->idlen, row.id, s->idlen, s->version, (uint64_t)s->modified, s->deleted, payload, plen);
            w->payloads.len = 0; /* the payload is written: its place is the next one's */
            streamed++;
        } else if (!s->deleted && (w->plan.passthrough || s->general)) {
            s->bodylen = (size_t)row.bodylen;
            buf_put(page, row.body, s->bodylen);
        }
        if (work_failed(w)) {
            nomem = 1;
            break;
        }
    }
    if (rc == SQLITE_DONE && !nomem) {
        nrows = nslots - streamed;
        if (nrows > w->caprows) {
            PyMem_RawFree(w->rows);
            w->caprows = 0;
            w->rows = PyMem_RawMalloc(nrows * sizeof(Row));
            if (w->rows != NULL) w->caprows = nrows;
        }
        if (nrows > w->caprows) {
            nomem = 1;
        } else {
            for (size_t i = 0; i < nrows; i++) {
                Row *r = &w->rows[i];
                Slot *s = &w->pslots[streamed + i];
                *r = (Row){0};
                r->id = r->rid = page->p + s->id;
                r->idlen = r->ridlen = (Py_ssize_t)s->idlen;
                r->version = s->version;
                r->modified = s->modified;
                r->deleted = s->deleted;
                r->general = s->general;
                if (w->plan.passthrough || s->general) {
                    r->body = page->p + s->body;
                    r->bodylen = (Py_ssize_t)s->bodylen;
                } else {
                    r->start = s->payload;
                    r->len = s->bodylen;
                }
                general += r->general;
            }
            if (!general) assemble(w, w->rows, (Py_ssize_t)nrows);
        }
    }
    Py_END_ALLOW_THREADS
    int read_ok = rc == SQLITE_DONE || (rc == SQLITE_ROW && (rows_path || nomem));
    if (!read_ok) sqlite_error(self->db, rc); /* before the reset (which keeps the error, and its message) */
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    self->in_use = 0; /* the statement is done with: a fallback below may even close the reader */
    if (!read_ok) goto done;
    if (nomem || work_failed(w)) {
        PyErr_NoMemory();
        goto done;
    }
    if (rows_path) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (general) {
        int answered = general_rows(w->rows, (Py_ssize_t)nrows, fallback);
        if (answered < 0) goto done;
        if (answered > 0) { /* the caller reads the page as rows: the Python path frames it (or fails) */
            result = Py_NewRef(Py_None);
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        assemble(w, w->rows, (Py_ssize_t)nrows);
        Py_END_ALLOW_THREADS
    }
    encoded = work_result(w);
    if (encoded == NULL) goto done;
    if (nslots) {
        Slot *last = &w->pslots[nslots - 1];
        result = Py_BuildValue("(nOs#L)", (Py_ssize_t)nslots, encoded, page->p + last->id, (Py_ssize_t)last->idlen,
                               (long long)last->modified);
    } else {
        result = Py_BuildValue("(nOOi)", (Py_ssize_t)0, encoded, Py_None, 0);
    }
done:
    Py_XDECREF(encoded);
    if (general) release_rows(w->rows, (Py_ssize_t)nrows); /* fallback answers only where a row was general */
    work_free(w);
    return result;
}

static PyMethodDef Reader_methods[] = {
    {"encode", (PyCFunction)Reader_encode, METH_VARARGS,
     "encode(sql, params, fingerprint, plan, fallback, digest_prefix) -> (count, (wire, digest, evidence), "
     "last_id, last_modified_us), or None when a row of the page did not pass the validator named by fingerprint "
     "or is not as the store writes it (the caller reads the page as rows)"},
    {"close", (PyCFunction)Reader_close, METH_NOARGS, "close the connection"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "node._fastread.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_dealloc = (destructor)Reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A store read connection that encodes whole pages (see node.store._reads).",
    .tp_methods = Reader_methods,
    .tp_init = (initproc)Reader_init,
    .tp_new = PyType_GenericNew,
};

/*
 * shares_sqlite(sqlite3_module_file): whether this module and the sqlite3 module (its file, None when
 * it is built into the interpreter) use the same copy of the SQLite library. Two copies in one process
 * must not open the same database: each keeps its own POSIX locks, and one closing the file drops the
 * other's (https://www.sqlite.org/howtocorrupt.html, 2.2.1). Python then reads without this module.
 */
static PyObject *shares_sqlite(PyObject *self, PyObject *arg) {
#if defined(__unix__) || defined(__APPLE__)
    const char *path = NULL;
    if (arg != Py_None) {
        if (!PyUnicode_Check(arg)) {
            PyErr_SetString(PyExc_TypeError, "shares_sqlite takes the sqlite3 module's file, or None");
            return NULL;
        }
        path = PyUnicode_AsUTF8(arg);
        if (path == NULL) return NULL;
    }
    void *handle = path == NULL ? dlopen(NULL, RTLD_LAZY) : dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == NULL) Py_RETURN_FALSE; /* not loaded: nothing to compare with */
    void *theirs = dlsym(handle, "sqlite3_libversion");
    dlclose(handle);
    return PyBool_FromLong(theirs != NULL && theirs == (void *)&sqlite3_libversion);
#else
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"encode_batch", encode_batch, METH_VARARGS,
     "encode_batch(rows, plan, fallback, digest_prefix) -> (wire, digest, evidence), or None when a row is not "
     "as the store reads it (the caller encodes the batch in Python): see node.service._outgoing"},
    {"shares_sqlite", shares_sqlite, METH_O,
     "shares_sqlite(sqlite3_module_file) -> bool: the sqlite3 module uses the SQLite library this module uses"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "node._fastread", "The outgoing-record hot path of a query, in C.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastread(void) {
    init_classes();
    if (PyType_Ready(&ReaderType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    /* store reads fail with the sqlite3 module's exceptions; SQLiteError is its base class, sqlite3.Error */
    PyObject *sqlite3mod = PyImport_ImportModule("sqlite3");
    if (sqlite3mod == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    struct {
        PyObject **slot;
        const char *name;
    } classes[] = {
        {&SqlError, "Error"}, {&SqlDatabaseError, "DatabaseError"}, {&SqlOperationalError, "OperationalError"},
        {&SqlProgrammingError, "ProgrammingError"}, {&SqlInternalError, "InternalError"},
        {&SqlDataError, "DataError"}, {&SqlIntegrityError, "IntegrityError"}, {&SqlInterfaceError, "InterfaceError"},
    };
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        Py_XSETREF(*classes[i].slot, PyObject_GetAttrString(sqlite3mod, classes[i].name));
        if (*classes[i].slot == NULL) {
            Py_DECREF(sqlite3mod);
            Py_DECREF(m);
            return NULL;
        }
    }
    Py_DECREF(sqlite3mod);
    if (PyModule_AddObjectRef(m, "SQLiteError", SqlError) < 0
        || PyModule_AddObjectRef(m, "Reader", (PyObject *)&ReaderType) < 0
        || PyModule_AddIntConstant(m, "ABI", FASTREAD_ABI) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
