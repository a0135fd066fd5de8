/*
 * Normalize: the first stage after the connectors. A record's free text (website, name,
 * tax id, country, city) becomes the canonical strings that keys are made of. Domains go
 * through libidn2 (IDN to A-labels) and libpsl (registrable domain); text goes through
 * utf8proc (NFKC and case folding), with an ASCII fast path that skips it.
 */
#include "acctmap/normalize.h"

#include <idn2.h>
#include <libpsl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Longest name, city or country accepted (bytes); longer text is not a name but garbage. */
#define TEXT_INPUT_MAX 4096
/* Longest host in A-label form (RFC 1035: 253 characters without the root dot). */
#define HOST_MAX 253
/* Longest host before IDNA: Cyrillic letters take two UTF-8 bytes and punycode packs them. */
#define HOST_INPUT_MAX 1024
/* Longest tax id, separators excluded, that we look at. */
#define TAX_ID_MAX 32
/* How much of the input an error message quotes. */
#define QUOTE_MAX 60

/*
 * utf8proc options for names, cities and countries:
 *   COMPAT|COMPOSE  NFKC: full-width, ligatures and styled letters become plain letters;
 *   CASEFOLD        full case folding ("ß" -> "ss"), not just lower case;
 *   IGNORE          drops default-ignorable code points (soft hyphen, zero-width space, BOM)
 *                   that CRM copy-paste leaves inside words;
 *   STABLE          keeps the result stable across Unicode versions.
 * Not STRIPMARK: it would turn "й" into "и". Not LUMP: punctuation becomes a space anyway.
 */
#define FOLD_OPTIONS                                                                               \
    ((utf8proc_option_t)(UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |                    \
                         UTF8PROC_CASEFOLD | UTF8PROC_IGNORE))

/*
 * libidn2 flags: UTS #46 non-transitional processing, as browsers and registries do since
 * IDNA2008 ("straße.de" stays "xn--strae-oqa.de"). It also maps upper case and full-width
 * forms. Not USE_STD3_ASCII_RULES: it silently deletes a space or "_" where we want to refuse
 * the host. A-labels ("xn--...") are round-trip checked (the libidn2 default).
 */
#define IDN_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

typedef struct phrase {
    const char *text;
    size_t len;
} phrase;

#define PHRASE(s)                                                                                  \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Legal forms, removed wherever they stand as whole words. Written folded (NFKC, case
 * folded, "ё" as "е", punctuation as a space), so "L.L.C." is "l l c" and "Inc." is "inc".
 * The longest match wins, so order does not matter. Latin "ooo", "zao", ... are Russian forms
 * transliterated in English-language CRMs.
 */
static const phrase legal_forms[] = {
    /* Russia and Kazakhstan */
    PHRASE("ооо"),
    PHRASE("оао"),
    PHRASE("зао"),
    PHRASE("пао"),
    PHRASE("ао"),
    PHRASE("ип"),
    PHRASE("тоо"),
    PHRASE("общество с ограниченной ответственностью"),
    PHRASE("товарищество с ограниченной ответственностью"),
    PHRASE("акционерное общество"),
    PHRASE("публичное акционерное общество"),
    PHRASE("закрытое акционерное общество"),
    PHRASE("открытое акционерное общество"),
    PHRASE("ooo"),
    PHRASE("oao"),
    PHRASE("zao"),
    PHRASE("pao"),
    /* English-speaking countries */
    PHRASE("llc"),
    PHRASE("l l c"),
    PHRASE("inc"),
    PHRASE("incorporated"),
    PHRASE("ltd"),
    PHRASE("limited"),
    PHRASE("corp"),
    PHRASE("corporation"),
    PHRASE("co"),
    PHRASE("plc"),
    PHRASE("p l c"),
    PHRASE("llp"),
    PHRASE("l l p"),
    PHRASE("pty"),
    PHRASE("limited liability company"),
    PHRASE("limited liability partnership"),
    PHRASE("public limited company"),
    /* Continental Europe */
    PHRASE("gmbh"),
    PHRASE("g m b h"),
    PHRASE("ag"),
    PHRASE("a g"),
    PHRASE("sa"),
    PHRASE("s a"),
    PHRASE("sarl"),
    PHRASE("s a r l"),
    PHRASE("sas"),
    PHRASE("s a s"),
    PHRASE("bv"),
    PHRASE("b v"),
    PHRASE("nv"),
    PHRASE("n v"),
    PHRASE("ab"),
    PHRASE("oy"),
};

/*
 * City prefixes, dropped once at the start: "г. Москва", "город Москва", "City of London".
 * A trailing "г" ("Москва г", the 1C address form) is dropped too.
 */
static const phrase city_prefixes[] = {
    PHRASE("г"),
    PHRASE("гор"),
    PHRASE("город"),
    PHRASE("city of"),
};

/*
 * Hosts that are not a company's own site: free mail, social networks, and site builders
 * that put every customer under their domain. Any host equal to or under one of these is
 * no key (AM_OK, length 0): "petrova.atelier@gmail.com", "vk.com/club1", "acme.tilda.ws".
 * A builder listed in the private section of the public suffix list (github.io, blogspot.com)
 * is not here: there each subdomain is its own site. wixsite.com is in that section too, but
 * a Wix subdomain is a user account holding several sites under paths, so it stays here.
 */
static const phrase free_hosts[] = {
    /* free mail */
    PHRASE("gmail.com"),
    PHRASE("googlemail.com"),
    PHRASE("yahoo.com"),
    PHRASE("ymail.com"),
    PHRASE("outlook.com"),
    PHRASE("hotmail.com"),
    PHRASE("live.com"),
    PHRASE("msn.com"),
    PHRASE("icloud.com"),
    PHRASE("me.com"),
    PHRASE("mac.com"),
    PHRASE("aol.com"),
    PHRASE("proton.me"),
    PHRASE("protonmail.com"),
    PHRASE("gmx.de"),
    PHRASE("gmx.net"),
    PHRASE("web.de"),
    PHRASE("mail.ru"),
    PHRASE("bk.ru"),
    PHRASE("list.ru"),
    PHRASE("inbox.ru"),
    PHRASE("internet.ru"),
    PHRASE("yandex.ru"),
    PHRASE("yandex.com"),
    PHRASE("ya.ru"),
    PHRASE("rambler.ru"),
    PHRASE("qq.com"),
    PHRASE("163.com"),
    /* social networks and messengers */
    PHRASE("facebook.com"),
    PHRASE("fb.com"),
    PHRASE("instagram.com"),
    PHRASE("linkedin.com"),
    PHRASE("twitter.com"),
    PHRASE("x.com"),
    PHRASE("youtube.com"),
    PHRASE("tiktok.com"),
    PHRASE("vk.com"),
    PHRASE("ok.ru"),
    PHRASE("t.me"),
    PHRASE("wa.me"),
    /* site builders and shared hosting */
    PHRASE("tilda.ws"),
    PHRASE("wixsite.com"),
    PHRASE("sites.google.com"),
    PHRASE("business.site"),
    PHRASE("narod.ru"),
    PHRASE("ucoz.ru"),
};

/*
 * Country names in folded form and ISO 3166 alpha-3 codes, with their alpha-2 code. Any other
 * two-letter code passes through upper-cased, so only names and non-ISO codes ("uk") are here.
 */
static const struct country_name {
    phrase name;
    char code[3];
} country_names[] = {
    {PHRASE("russia"), "RU"},
    {PHRASE("russian federation"), "RU"},
    {PHRASE("rus"), "RU"},
    {PHRASE("россия"), "RU"},
    {PHRASE("российская федерация"), "RU"},
    {PHRASE("рф"), "RU"},
    {PHRASE("usa"), "US"},
    {PHRASE("u s a"), "US"},
    {PHRASE("u s"), "US"},
    {PHRASE("united states"), "US"},
    {PHRASE("united states of america"), "US"},
    {PHRASE("сша"), "US"},
    {PHRASE("uk"), "GB"},
    {PHRASE("u k"), "GB"},
    {PHRASE("gbr"), "GB"},
    {PHRASE("united kingdom"), "GB"},
    {PHRASE("great britain"), "GB"},
    {PHRASE("великобритания"), "GB"},
    {PHRASE("germany"), "DE"},
    {PHRASE("deutschland"), "DE"},
    {PHRASE("deu"), "DE"},
    {PHRASE("германия"), "DE"},
    {PHRASE("kazakhstan"), "KZ"},
    {PHRASE("kaz"), "KZ"},
    {PHRASE("казахстан"), "KZ"},
    {PHRASE("республика казахстан"), "KZ"},
    {PHRASE("belarus"), "BY"},
    {PHRASE("blr"), "BY"},
    {PHRASE("беларусь"), "BY"},
    {PHRASE("белоруссия"), "BY"},
    {PHRASE("республика беларусь"), "BY"},
    {PHRASE("france"), "FR"},
    {PHRASE("fra"), "FR"},
    {PHRASE("франция"), "FR"},
    {PHRASE("australia"), "AU"},
    {PHRASE("aus"), "AU"},
    {PHRASE("австралия"), "AU"},
    {PHRASE("netherlands"), "NL"},
    {PHRASE("the netherlands"), "NL"},
    {PHRASE("holland"), "NL"},
    {PHRASE("nld"), "NL"},
    {PHRASE("нидерланды"), "NL"},
    {PHRASE("ukraine"), "UA"},
    {PHRASE("украина"), "UA"},
    {PHRASE("uzbekistan"), "UZ"},
    {PHRASE("узбекистан"), "UZ"},
    {PHRASE("armenia"), "AM"},
    {PHRASE("армения"), "AM"},
    {PHRASE("kyrgyzstan"), "KG"},
    {PHRASE("кыргызстан"), "KG"},
    {PHRASE("киргизия"), "KG"},
    {PHRASE("china"), "CN"},
    {PHRASE("китай"), "CN"},
    {PHRASE("united arab emirates"), "AE"},
    {PHRASE("uae"), "AE"},
    {PHRASE("оаэ"), "AE"},
};

/*
 * Blanks that CRM exports put around and inside values: ASCII white space, no-break space
 * (Excel), narrow no-break space (thousands separator), zero-width space and a stray BOM.
 */
static const phrase blanks[] = {
    PHRASE(" "),
    PHRASE("\t"),
    PHRASE("\r"),
    PHRASE("\n"),
    PHRASE("\v"),
    PHRASE("\f"),
    PHRASE("\xC2\xA0"),     /* U+00A0 */
    PHRASE("\xE2\x80\xAF"), /* U+202F */
    PHRASE("\xE2\x80\x8B"), /* U+200B */
    PHRASE("\xEF\xBB\xBF"), /* U+FEFF */
};

/* Dashes people type inside tax ids: "77-07-083893", "7707–083893". */
static const phrase dashes[] = {
    PHRASE("-"),
    PHRASE("\xE2\x80\x90"), /* U+2010 hyphen */
    PHRASE("\xE2\x80\x91"), /* U+2011 non-breaking hyphen */
    PHRASE("\xE2\x80\x93"), /* U+2013 en dash */
    PHRASE("\xE2\x80\x94"), /* U+2014 em dash */
    PHRASE("\xE2\x88\x92"), /* U+2212 minus */
};

/*
 * A phrase table bucketed by the byte that tells words apart best: the first byte of an
 * ASCII word, the second of a Cyrillic one (the first is 0xD0 or 0xD1 for every letter).
 * Built once per normalizer, so that a word is compared with a few phrases, not all of them.
 */
#define PHRASES_MAX 64

typedef struct phrase_index {
    const phrase *sorted[PHRASES_MAX];
    uint8_t start[257]; /* bucket k is sorted[start[k] .. start[k + 1]) */
} phrase_index;

_Static_assert(COUNT(legal_forms) <= PHRASES_MAX, "raise PHRASES_MAX");
_Static_assert(COUNT(city_prefixes) <= PHRASES_MAX, "raise PHRASES_MAX");

/*
 * What libpsl said of recent top-level domains. Rows repeat a few TLDs ("com", "ru", "de"), and
 * asking libpsl costs a fifth of a domain's time. Direct-mapped; a TLD too long for an entry
 * is always asked.
 */
#define TLD_CACHE_SIZE 64

typedef struct tld_verdict {
    char tld[16]; /* "" when the entry is empty */
    bool known;
} tld_verdict;

struct am_normalizer {
    psl_ctx_t *psl;
    tld_verdict tlds[TLD_CACHE_SIZE];
    phrase_index legal_forms;
    phrase_index city_prefixes;
    utf8proc_int32_t *cps; /* code points of the text being folded */
    size_t cps_cap;
    char *words; /* folded text: words separated by one space */
    size_t words_cap;
    char host[HOST_INPUT_MAX + 1];
};

/* ---- small helpers ------------------------------------------------------------------------ */

static bool is_ascii_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ascii_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static unsigned char ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool ascii_ieq(const char *a, size_t alen, const char *lower)
{
    size_t i;

    if (alen != strlen(lower)) {
        return false;
    }
    for (i = 0; i < alen; i++) {
        if (ascii_lower((unsigned char)a[i]) != (unsigned char)lower[i]) {
            return false;
        }
    }
    return true;
}

/* Length of the entry of `table` that [p, e) starts with, or 0. */
static size_t prefix_in(const phrase *table, size_t count, const char *p, const char *e)
{
    size_t i;

    for (i = 0; i < count; i++) {
        if ((size_t)(e - p) >= table[i].len && table[i].text[0] == *p &&
            memcmp(p, table[i].text, table[i].len) == 0) {
            return table[i].len;
        }
    }
    return 0;
}

/* Length of the entry of `table` that [p, e) ends with, or 0. */
static size_t suffix_in(const phrase *table, size_t count, const char *p, const char *e)
{
    size_t i;

    for (i = 0; i < count; i++) {
        if ((size_t)(e - p) >= table[i].len && table[i].text[table[i].len - 1] == e[-1] &&
            memcmp(e - table[i].len, table[i].text, table[i].len) == 0) {
            return table[i].len;
        }
    }
    return 0;
}

static void trim_blanks(const char **pp, const char **pe)
{
    size_t n;

    while ((n = prefix_in(blanks, COUNT(blanks), *pp, *pe)) > 0) {
        *pp += n;
    }
    while ((n = suffix_in(blanks, COUNT(blanks), *pp, *pe)) > 0) {
        *pe -= n;
    }
}

/*
 * Up to QUOTE_MAX bytes of `in`, blanks trimmed, for an error message: whole UTF-8 characters
 * only, "?" for an invalid byte or a control character (the message stays one valid line),
 * and "..." when cut.
 */
static const char *quote(char buf[static QUOTE_MAX + 4], const char *in, size_t len)
{
    const char *p = in, *e = in + len;
    size_t o = 0;

    trim_blanks(&p, &e);
    while (p < e) {
        utf8proc_int32_t cp = -1;
        utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)p, e - p, &cp);
        bool printable = n > 0;

        if (printable) {
            utf8proc_category_t cat = utf8proc_category(cp);
            printable = cat != UTF8PROC_CATEGORY_CC && cat != UTF8PROC_CATEGORY_ZL &&
                        cat != UTF8PROC_CATEGORY_ZP;
        }
        if (!printable) {
            n = 1;
        }
        if (o + (size_t)(printable ? n : 1) > QUOTE_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (printable) {
            memcpy(buf + o, p, (size_t)n);
            o += (size_t)n;
        } else {
            buf[o++] = '?';
        }
        p += n;
    }
    buf[o] = '\0';
    return buf;
}

/* Room for `need` code points in n->cps; false when out of memory. */
static bool reserve_cps(am_normalizer *n, size_t need)
{
    utf8proc_int32_t *grown;

    if (need <= n->cps_cap) {
        return true;
    }
    grown = realloc(n->cps, need * sizeof(*grown));
    if (!grown) {
        return false;
    }
    n->cps = grown;
    n->cps_cap = need;
    return true;
}

/* Room for `need` bytes in n->words; false when out of memory. */
static bool reserve_words(am_normalizer *n, size_t need)
{
    char *grown;

    if (need <= n->words_cap) {
        return true;
    }
    grown = realloc(n->words, need);
    if (!grown) {
        return false;
    }
    n->words = grown;
    n->words_cap = need;
    return true;
}

/* Words are valid UTF-8, so a word starting with a byte >= 0x80 has a second byte. */
static unsigned char phrase_key(const char *w)
{
    unsigned char c = (unsigned char)w[0];

    return c < 0x80 ? c : (unsigned char)w[1];
}

static void phrase_index_build(phrase_index *ix, const phrase *table, size_t count)
{
    size_t counts[256] = {0}, k, i, at = 0;

    for (i = 0; i < count; i++) {
        counts[phrase_key(table[i].text)]++;
    }
    for (k = 0; k < 256; k++) {
        ix->start[k] = (uint8_t)at;
        at += counts[k];
    }
    ix->start[256] = (uint8_t)at;
    memset(counts, 0, sizeof(counts));
    for (i = 0; i < count; i++) {
        k = phrase_key(table[i].text);
        ix->sorted[ix->start[k] + counts[k]++] = &table[i];
    }
}

/* ---- the normalizer ----------------------------------------------------------------------- */

am_status am_normalizer_new(am_normalizer **out, am_error *err)
{
    am_status rc = AM_OK;
    am_normalizer *n = NULL;

    AM_ASSERT(out, err);
    *out = NULL;
    n = calloc(1, sizeof(*n));
    if (!n) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory creating a normalizer");
        goto cleanup;
    }
    /* The distribution's list (Debian: publicsuffix) or the built-in one, whichever is newer. */
    n->psl = psl_latest(NULL);
    if (!n->psl) {
        const char *dist = psl_dist_filename();
        rc = am_error_set(err, AM_EIO,
                          "cannot load the public suffix list (%s); install the publicsuffix "
                          "package",
                          dist && *dist ? dist : "no file configured");
        goto cleanup;
    }
    phrase_index_build(&n->legal_forms, legal_forms, COUNT(legal_forms));
    phrase_index_build(&n->city_prefixes, city_prefixes, COUNT(city_prefixes));
    /* Room for typical names, so that most calls never allocate. */
    if (!reserve_cps(n, 512) || !reserve_words(n, 2048)) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory creating a normalizer");
        goto cleanup;
    }
    *out = n;
    n = NULL;
cleanup:
    am_normalizer_free(n);
    return rc;
}

void am_normalizer_free(am_normalizer *n)
{
    if (!n) {
        return;
    }
    psl_free(n->psl); /* a no-op for the built-in list */
    free(n->cps);
    free(n->words);
    free(n);
}

/* ---- folding text into words -------------------------------------------------------------- */

/*
 * ASCII is already NFKC and folds to lower case, so the fast path keeps letters and digits
 * lower-cased, turns everything else into a word break, and never calls utf8proc. It must
 * agree with fold_unicode on ASCII (the tests check it). Returns false at the first non-ASCII
 * byte.
 */
static bool fold_ascii(char *dst, size_t *dst_len, const char *in, size_t len)
{
    size_t i, o = 0;
    bool brk = false;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (c >= 0x80) {
            return false;
        }
        if (!is_ascii_alpha(c) && !is_ascii_digit(c)) {
            brk = o > 0;
            continue;
        }
        if (brk) {
            dst[o++] = ' ';
            brk = false;
        }
        dst[o++] = (char)ascii_lower(c);
    }
    dst[o] = '\0';
    *dst_len = o;
    return true;
}

/*
 * NFKC and case folding by utf8proc into the normalizer's code point buffer; then letters,
 * marks and digits are kept, "ё" becomes "е" (Russian writes both for one letter), and every
 * other code point (punctuation, quotes «»„“, symbols such as ® or +, spaces, controls) is a
 * word break.
 */
static am_status fold_unicode(am_normalizer *n, size_t *dst_len, const char *in, size_t len,
                              const char *what, am_error *err)
{
    char q[QUOTE_MAX + 4];
    utf8proc_ssize_t count, i;
    size_t o = 0;
    bool brk = false;

    for (;;) {
        count =
            utf8proc_decompose_custom((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)len, n->cps,
                                      (utf8proc_ssize_t)n->cps_cap, FOLD_OPTIONS, NULL, NULL);
        if (count == UTF8PROC_ERROR_INVALIDUTF8) {
            return am_error_set(err, AM_EINPUT, "%s \"%s\" is not valid UTF-8", what,
                                quote(q, in, len));
        }
        if (count < 0) {
            return am_error_set(err, AM_EINTERNAL, "utf8proc: %s; please report this bug",
                                utf8proc_errmsg(count));
        }
        if ((size_t)count <= n->cps_cap) {
            break;
        }
        if (!reserve_cps(n, (size_t)count)) {
            return am_error_set(err, AM_ENOMEM, "out of memory normalizing a %s", what);
        }
    }
    count = utf8proc_normalize_utf32(n->cps, count, FOLD_OPTIONS);
    if (count < 0) {
        return am_error_set(err, AM_EINTERNAL, "utf8proc: %s; please report this bug",
                            utf8proc_errmsg(count));
    }
    /* Each code point takes at most 4 bytes, plus one space before it. */
    if (!reserve_words(n, 5 * (size_t)count + 1)) {
        return am_error_set(err, AM_ENOMEM, "out of memory normalizing a %s", what);
    }
    for (i = 0; i < count; i++) {
        utf8proc_int32_t cp = n->cps[i];

        switch (utf8proc_category(cp)) {
        case UTF8PROC_CATEGORY_LU:
        case UTF8PROC_CATEGORY_LL:
        case UTF8PROC_CATEGORY_LT:
        case UTF8PROC_CATEGORY_LM:
        case UTF8PROC_CATEGORY_LO:
        case UTF8PROC_CATEGORY_MN:
        case UTF8PROC_CATEGORY_MC:
        case UTF8PROC_CATEGORY_ME:
        case UTF8PROC_CATEGORY_ND:
        case UTF8PROC_CATEGORY_NL:
        case UTF8PROC_CATEGORY_NO:
            break;
        default:
            brk = o > 0;
            continue;
        }
        if (cp == 0x0451) { /* ё -> е */
            cp = 0x0435;
        }
        if (brk) {
            n->words[o++] = ' ';
            brk = false;
        }
        o += (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)n->words + o);
    }
    n->words[o] = '\0';
    *dst_len = o;
    return AM_OK;
}

/*
 * Fold `in` into n->words: lower-case words separated by single spaces, no punctuation.
 * `what` names the field in messages ("name").
 */
static am_status fold_words(am_normalizer *n, size_t *words_len, const char *in, size_t len,
                            const char *what, am_error *err)
{
    *words_len = 0;
    if (len > TEXT_INPUT_MAX) {
        return am_error_set(err, AM_EINPUT, "%s is %zu bytes long; at most %d are accepted", what,
                            len, TEXT_INPUT_MAX);
    }
    if (!reserve_words(n, len + 1)) {
        return am_error_set(err, AM_ENOMEM, "out of memory normalizing a %s", what);
    }
    if (fold_ascii(n->words, words_len, in, len)) {
        return AM_OK;
    }
    return fold_unicode(n, words_len, in, len, what, err);
}

/*
 * Length of the longest phrase of `ix` that the words at `w` (`len` > 0 bytes) start with,
 * ending at a word break; 0 if none.
 */
static size_t match_phrase(const phrase_index *ix, const char *w, size_t len)
{
    unsigned char key = phrase_key(w);
    size_t i, best = 0;

    for (i = ix->start[key]; i < ix->start[key + 1]; i++) {
        const phrase *ph = ix->sorted[i];

        if (ph->len > len || ph->len <= best) {
            continue;
        }
        if (ph->len < len && w[ph->len] != ' ') {
            continue;
        }
        if (memcmp(w, ph->text, ph->len) == 0) {
            best = ph->len;
        }
    }
    return best;
}

/*
 * Copy the words (`len` bytes at `w`) into `out`, without the phrases of `drop` (if any), separated
 * by one space, NUL-terminated, cut to AM_NORM_MAX - 1 bytes on a character boundary. Returns the
 * length written.
 */
static size_t emit_words(char *out, const char *w, size_t len, const phrase_index *drop)
{
    const size_t max = AM_NORM_MAX - 1;
    size_t pos = 0, o = 0;

    while (pos < len) {
        size_t skip = drop ? match_phrase(drop, w + pos, len - pos) : 0;
        const char *space;
        size_t wlen, room;

        if (skip) {
            pos += skip + 1; /* and the space after it */
            continue;
        }
        space = memchr(w + pos, ' ', len - pos);
        wlen = space ? (size_t)(space - (w + pos)) : len - pos;
        if (o > 0) {
            if (o == max) {
                break;
            }
            out[o++] = ' ';
        }
        room = max - o;
        if (wlen > room) {
            /* Back up to the start of a UTF-8 character. */
            while (room > 0 && ((unsigned char)w[pos + room] & 0xC0) == 0x80) {
                room--;
            }
            memcpy(out + o, w + pos, room);
            o += room;
            break;
        }
        memcpy(out + o, w + pos, wlen);
        o += wlen;
        pos += wlen + 1;
    }
    while (o > 0 && out[o - 1] == ' ') {
        o--;
    }
    out[o] = '\0';
    return o;
}

/* ---- domain ------------------------------------------------------------------------------- */

/* Marks that free text puts around a site: "<https://acme.com>", "(acme.com).", "acme.com;". */
static const char open_marks[] = "<([{\"'";
static const char close_marks[] = ">)]}\"'.,;:!?";

static void trim_domain(const char **pp, const char **pe)
{
    const char *p0, *e0;

    do {
        p0 = *pp;
        e0 = *pe;
        trim_blanks(pp, pe);
        while (*pp < *pe && memchr(open_marks, **pp, sizeof(open_marks) - 1)) {
            (*pp)++;
        }
        while (*pe > *pp && memchr(close_marks, (*pe)[-1], sizeof(close_marks) - 1)) {
            (*pe)--;
        }
    } while (*pp != p0 || *pe != e0);
}

/*
 * Skip "scheme://", "mailto:", a scheme-relative "//", and the sloppy "http:acme.com" or
 * "https:\\acme.com" people type. "acme.com:443" has no scheme: only "//" or a known name
 * makes one.
 */
static const char *skip_scheme(const char *p, const char *e)
{
    const char *s = p;
    size_t slen;

    if (s < e && is_ascii_alpha((unsigned char)*s)) {
        while (s < e && (is_ascii_alpha((unsigned char)*s) || is_ascii_digit((unsigned char)*s) ||
                         *s == '+' || *s == '-' || *s == '.')) {
            s++;
        }
        slen = (size_t)(s - p);
        if (s < e && *s == ':') {
            if (ascii_ieq(p, slen, "http") || ascii_ieq(p, slen, "https") ||
                ascii_ieq(p, slen, "ftp")) {
                for (s++; s < e && (*s == '/' || *s == '\\'); s++) {
                }
                return s;
            }
            if (ascii_ieq(p, slen, "mailto")) {
                return s + 1;
            }
            if (e - s >= 3 && s[1] == '/' && s[2] == '/') {
                return s + 3;
            }
        }
    }
    if (e - p >= 2 && p[0] == '/' && p[1] == '/') {
        return p + 2;
    }
    return p;
}

typedef enum host_kind { HOST_NAME, HOST_BAD, HOST_IP } host_kind;

/*
 * Check a lower-case A-label host: LDH labels of 1 to 63 characters that neither start nor
 * end with "-", at least two of them, 253 characters in all. A numeric last label is never
 * a top-level domain: four numeric labels are an IPv4 address, anything else is bad.
 */
static host_kind classify_host(const char *h, size_t len)
{
    size_t start = 0, labels = 0, numeric_labels = 0;

    if (len > HOST_MAX) {
        return HOST_BAD;
    }
    while (start <= len) {
        const char *dot = memchr(h + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - h) : len, i;
        bool numeric = true;

        if (end == start || end - start > 63 || h[start] == '-' || h[end - 1] == '-') {
            return HOST_BAD;
        }
        for (i = start; i < end; i++) {
            unsigned char c = (unsigned char)h[i];
            if (!is_ascii_digit(c)) {
                numeric = false;
                if (!(c >= 'a' && c <= 'z') && c != '-') {
                    return HOST_BAD;
                }
            }
        }
        labels++;
        numeric_labels += numeric;
        if (!dot) {
            if (numeric) {
                return labels == 4 && numeric_labels == 4 ? HOST_IP : HOST_BAD;
            }
            break;
        }
        start = end + 1;
    }
    return labels >= 2 ? HOST_NAME : HOST_BAD;
}

/* Whether `h` is one of free_hosts or under one ("mail.ru", "e.mail.ru", not "gmail.ru"). */
static bool is_free_host(const char *h, size_t len)
{
    size_t i;

    for (i = 0; i < COUNT(free_hosts); i++) {
        const phrase *f = &free_hosts[i];

        /* The label boundary first: it rules out most entries without a memcmp. */
        if (len >= f->len && (len == f->len || h[len - f->len - 1] == '.') &&
            memcmp(h + len - f->len, f->text, f->len) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether `tld` (NUL-terminated, lower case) is in the public suffix list, not just "*". */
static bool tld_known(am_normalizer *n, const char *tld)
{
    size_t len = strlen(tld);
    tld_verdict *v = &n->tlds[((unsigned char)tld[0] * 31u + (unsigned char)tld[len - 1] + len) %
                              TLD_CACHE_SIZE];
    bool known;

    if (len < sizeof(v->tld) && memcmp(v->tld, tld, len + 1) == 0) {
        return v->known;
    }
    known = psl_is_public_suffix2(n->psl, tld, PSL_TYPE_ANY | PSL_TYPE_NO_STAR_RULE);
    if (len < sizeof(v->tld)) {
        memcpy(v->tld, tld, len + 1);
        v->known = known;
    }
    return known;
}

static am_status not_a_domain(am_error *err, const char *p, const char *e, const char *why)
{
    char q[QUOTE_MAX + 4];

    return am_error_set(err, AM_EINPUT, "\"%s\" %s", quote(q, p, (size_t)(e - p)), why);
}

am_status am_normalize_domain(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                              const char *in, size_t len, am_error *err)
{
    am_status rc = AM_OK;
    uint8_t *ace = NULL;
    const char *p = in, *e = in + len, *host, *host_end, *c, *reg, *tld;
    size_t hlen, i;
    bool ascii = true;
    host_kind kind;

    AM_ASSERT(out && len_out && n && (in || len == 0) && cap >= AM_NORM_MAX, err);
    out[0] = '\0';
    *len_out = 0;

    trim_domain(&p, &e);
    if (p == e) {
        goto cleanup;
    }
    host = skip_scheme(p, e);
    /* The authority ends where the path, query or fragment starts ("/index.php?x", "#top"). */
    for (host_end = host; host_end < e && !memchr("/\\?#", *host_end, 4); host_end++) {
    }
    /* Userinfo: "user@acme.com", "mailto:user@acme.com", "https://user:pw@acme.com". */
    for (c = host_end; c > host; c--) {
        if (c[-1] == '@') {
            host = c;
            break;
        }
    }
    if (host < host_end && *host == '[') {
        rc = not_a_domain(err, p, e, "is an IP address, not a domain");
        goto cleanup;
    }
    /* The port: digits after the one colon; more colons are an IPv6 address. */
    for (c = host; c < host_end && *c != ':'; c++) {
    }
    if (c < host_end) {
        const char *port, *colon = c;

        for (port = c + 1; port < host_end && is_ascii_digit((unsigned char)*port); port++) {
        }
        if (port < host_end) {
            for (c = port; c < host_end && *c != ':'; c++) {
            }
            rc = not_a_domain(err, p, e,
                              c < host_end ? "is an IP address, not a domain" : "is not a domain");
            goto cleanup;
        }
        host_end = colon;
    }
    while (host_end > host && host_end[-1] == '.') { /* the root label: "acme.com." */
        host_end--;
    }
    hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen > HOST_INPUT_MAX) {
        rc = not_a_domain(err, p, e, "is not a domain");
        goto cleanup;
    }
    for (i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)host[i];

        if (ch >= 0x80) {
            ascii = false;
        } else if (!is_ascii_alpha(ch) && !is_ascii_digit(ch) && ch != '-' && ch != '.') {
            rc = not_a_domain(err, p, e, "is not a domain");
            goto cleanup;
        }
        n->host[i] = (char)ascii_lower(ch);
    }
    n->host[hlen] = '\0';

    /* IDN to A-labels; existing A-labels are checked by the round trip. */
    if (!ascii || strstr(n->host, "xn--")) {
        int irc = idn2_lookup_u8((const uint8_t *)n->host, &ace, IDN_FLAGS);

        if (irc == IDN2_MALLOC) {
            rc = am_error_set(err, AM_ENOMEM, "out of memory converting a domain to punycode");
            goto cleanup;
        }
        hlen = irc == IDN2_OK ? strlen((const char *)ace) : 0;
        if (irc != IDN2_OK || hlen > HOST_MAX) {
            rc = not_a_domain(err, p, e, "is not a domain");
            goto cleanup;
        }
        memcpy(n->host, ace, hlen + 1);
    }

    kind = classify_host(n->host, hlen);
    if (kind != HOST_NAME) {
        rc = not_a_domain(err, p, e,
                          kind == HOST_IP ? "is an IP address, not a domain" : "is not a domain");
        goto cleanup;
    }
    if (is_free_host(n->host, hlen)) {
        goto cleanup;
    }
    /* Refuse what only the "*" default rule would accept: typos ("acme.cmo"), "acme.local". */
    tld = strrchr(n->host, '.') + 1;
    if (!tld_known(n, tld)) {
        rc = not_a_domain(err, p, e, "is not a domain (unknown top-level domain)");
        goto cleanup;
    }
    /* Both sections count: "foo.github.io" is a site of its own. */
    reg = psl_registrable_domain(n->psl, n->host);
    if (!reg) {
        rc = not_a_domain(err, p, e, "is a public suffix, not a domain");
        goto cleanup;
    }
    hlen = strlen(reg);
    memcpy(out, reg, hlen + 1);
    *len_out = hlen;
cleanup:
    idn2_free(ace);
    return rc;
}

/* ---- name, city, country ------------------------------------------------------------------ */

am_status am_normalize_name(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err)
{
    am_status rc;
    size_t wlen = 0;

    AM_ASSERT(out && len_out && n && (in || len == 0) && cap >= AM_NORM_MAX, err);
    out[0] = '\0';
    *len_out = 0;
    rc = fold_words(n, &wlen, in, len, "name", err);
    if (rc) {
        return rc;
    }
    *len_out = emit_words(out, n->words, wlen, &n->legal_forms);
    return AM_OK;
}

am_status am_normalize_city(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                            const char *in, size_t len, am_error *err)
{
    am_status rc;
    size_t wlen = 0, skip;
    const char *w;

    AM_ASSERT(out && len_out && n && (in || len == 0) && cap >= AM_NORM_MAX, err);
    out[0] = '\0';
    *len_out = 0;
    rc = fold_words(n, &wlen, in, len, "city", err);
    if (rc) {
        return rc;
    }
    w = n->words;
    skip = wlen ? match_phrase(&n->city_prefixes, w, wlen) : 0;
    if (skip) {
        skip += skip < wlen; /* the space after it */
        w += skip;
        wlen -= skip;
    }
    if (wlen >= 3 && memcmp(w + wlen - 3, " \xD0\xB3", 3) == 0) { /* trailing " г" */
        wlen -= 3;
    }
    *len_out = emit_words(out, w, wlen, NULL);
    return AM_OK;
}

am_status am_normalize_country(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                               const char *in, size_t len, am_error *err)
{
    char q[QUOTE_MAX + 4];
    am_status rc;
    size_t wlen = 0, i;
    const char *w;

    AM_ASSERT(out && len_out && n && (in || len == 0) && cap >= AM_NORM_MAX, err);
    out[0] = '\0';
    *len_out = 0;
    rc = fold_words(n, &wlen, in, len, "country", err);
    if (rc || wlen == 0) {
        return rc;
    }
    w = n->words;
    for (i = 0; i < COUNT(country_names); i++) {
        const phrase *name = &country_names[i].name;

        if (name->len == wlen && memcmp(name->text, w, wlen) == 0) {
            memcpy(out, country_names[i].code, 3);
            *len_out = 2;
            return AM_OK;
        }
    }
    /* Folding lowered the case and dropped punctuation: "ru", " RU ", "R.U." all get here. */
    if (wlen == 2 && w[0] >= 'a' && w[0] <= 'z' && w[1] >= 'a' && w[1] <= 'z') {
        out[0] = (char)(w[0] - ('a' - 'A'));
        out[1] = (char)(w[1] - ('a' - 'A'));
        out[2] = '\0';
        *len_out = 2;
        return AM_OK;
    }
    return am_error_set(err, AM_EINPUT,
                        "country \"%s\" is not known; use an ISO 3166 code like RU or US",
                        quote(q, in, len));
}

/* ---- tax id ------------------------------------------------------------------------------- */

/*
 * Russian INN check digit over the `n` digits at `d`: the weighted sum mod 11 mod 10. The
 * weights of the 10-digit INN and of both checks of the 12-digit one are tails of one series.
 */
static int inn_check_digit(const char *d, size_t n)
{
    static const int weights[] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    const int *w = weights + COUNT(weights) - n;
    int sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        sum += (d[i] - '0') * w[i];
    }
    return sum % 11 % 10;
}

static bool inn_valid(const char *d, size_t n)
{
    if (n == 10) {
        return inn_check_digit(d, 9) == d[9] - '0';
    }
    return inn_check_digit(d, 10) == d[10] - '0' && inn_check_digit(d, 11) == d[11] - '0';
}

bool am_normalize_name_is_person(am_normalizer *n, const char *in, size_t len)
{
    /* The form leads the name: "ИП Иванов", "ип Петрова", "Индивидуальный предприниматель". */
    static const char *const forms[] = {"ИП ", "Ип ", "ип ", "ИП\xc2\xa0",
                                        "Индивидуальный предприниматель",
                                        "индивидуальный предприниматель",
                                        "ИНДИВИДУАЛЬНЫЙ ПРЕДПРИНИМАТЕЛЬ"};
    size_t i;

    (void)n;
    while (len && (*in == ' ' || *in == '\t')) {
        in++;
        len--;
    }
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        size_t flen = strlen(forms[i]);
        if (len >= flen && memcmp(in, forms[i], flen) == 0) {
            return true;
        }
    }
    return false;
}

am_status am_normalize_tax_id(am_tax_id *tax, am_normalizer *n, const char *in, size_t len,
                              const char *country, am_error *err)
{
    char *out = tax ? tax->value : NULL;
    size_t *len_out = tax ? &tax->len : NULL;
    size_t cap = sizeof(tax->value);
    char q[QUOTE_MAX + 4];
    char id[TAX_ID_MAX];
    const char *p = in, *e = in + len, *digits;
    size_t idlen = 0, ndigits, i, skip;
    bool too_long = false, russian;

    AM_ASSERT(tax && n && (in || len == 0) && country, err);
    out[0] = '\0';
    *len_out = 0;
    tax->scheme = AM_TAX_NONE;
    tax->person = false;
    tax->zero_restored = false;
    (void)cap;

    while (p < e) {
        skip = prefix_in(blanks, COUNT(blanks), p, e);
        if (!skip) {
            skip = prefix_in(dashes, COUNT(dashes), p, e);
        }
        if (skip) {
            p += skip;
            continue;
        }
        if (idlen == sizeof(id)) {
            too_long = true;
            break;
        }
        id[idlen++] = *p++;
    }
    if (idlen == 0) {
        return AM_OK;
    }

    /* A country prefix ("RU7707083893", a VAT-style "DE811...") says whose id it is. */
    digits = id;
    ndigits = idlen;
    russian = !country[0] || strcmp(country, "RU") == 0;
    if (idlen >= 2 && is_ascii_alpha((unsigned char)id[0]) &&
        is_ascii_alpha((unsigned char)id[1])) {
        russian = ascii_ieq(id, 2, "ru");
        digits += 2;
        ndigits -= 2;
    }
    if (!russian) {
        return AM_OK; /* other countries' ids are not checked yet: no key rather than a bad one */
    }

    for (i = 0; i < ndigits; i++) {
        if (!is_ascii_digit((unsigned char)digits[i])) {
            return am_error_set(err, AM_EINPUT,
                                "tax id \"%s\" has characters other than digits; a Russian INN "
                                "has 10 or 12 digits",
                                quote(q, in, len));
        }
    }
    if (too_long || (ndigits != 10 && ndigits != 12)) {
        return am_error_set(err, AM_EINPUT,
                            "tax id \"%s\" has %s%zu digits; a Russian INN has 10 or 12",
                            quote(q, in, len), too_long ? "more than " : "", ndigits);
    }
    /* All zeros passes the check digit, and is what CRMs hold when the id was unknown. */
    for (i = 0; i < ndigits && digits[i] == '0'; i++) {
    }
    if (i == ndigits) {
        return am_error_set(err, AM_EINPUT, "tax id \"%s\" is a placeholder, not an INN",
                            quote(q, in, len));
    }
    if (!inn_valid(digits, ndigits)) {
        return am_error_set(err, AM_EINPUT, "tax id \"%s\" fails its INN check digit",
                            quote(q, in, len));
    }
    memcpy(out, "RU", 2);
    memcpy(out + 2, digits, ndigits);
    out[2 + ndigits] = '\0';
    *len_out = 2 + ndigits;
    tax->scheme = AM_TAX_RU_INN;
    tax->person = ndigits == 12;
    return AM_OK;
}
