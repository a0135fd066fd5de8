/*
 * Normalize: the first stage after the connectors. A record's free text (website, name,
 * tax id, country, city) becomes the canonical strings that keys are made of. Domains go
 * through libidn2 (IDN to A-labels) and libpsl (registrable domain); text goes through
 * utf8proc (NFKC and case folding), with an ASCII fast path that skips it. Hosts that are
 * no company's own site come from data/free-domains.txt; tax ids are checked by their scheme.
 */
#include "acctmap/normalize.h"

#include <errno.h>
#include <idn2.h>
#include <libpsl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
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
 * The list of free-mail, social and site-builder domains, data/free-domains.txt. It is read from
 * $ACCTMAP_DATA_DIR, else from the data directory the build compiled in (the Makefile sets
 * AM_DATA_DIR to the source tree's data/), else from "data" under the working directory.
 */
#ifndef AM_DATA_DIR
#define AM_DATA_DIR "data"
#endif
#define FREE_DOMAINS_FILE "free-domains.txt"
/* The file is a list of a few hundred names; anything much bigger is not that file. */
#define FREE_DOMAINS_MAX_BYTES (1024 * 1024)

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
 * transliterated in English-language CRMs. Forms that are also words live in
 * legal_forms_at_end.
 */
static const phrase legal_forms[] = {
    /* Russia and the CIS */
    PHRASE("ооо"),
    PHRASE("оао"),
    PHRASE("зао"),
    PHRASE("пао"),
    PHRASE("ао"),
    PHRASE("нао"),
    PHRASE("ип"),
    PHRASE("тоо"),
    PHRASE("одо"),
    PHRASE("чуп"),
    PHRASE("фгуп"),
    PHRASE("гуп"),
    PHRASE("муп"),
    PHRASE("нко"),
    PHRASE("ано"),
    PHRASE("общество с ограниченной ответственностью"),
    PHRASE("общество с дополнительной ответственностью"),
    PHRASE("товарищество с ограниченной ответственностью"),
    PHRASE("акционерное общество"),
    PHRASE("публичное акционерное общество"),
    PHRASE("непубличное акционерное общество"),
    PHRASE("закрытое акционерное общество"),
    PHRASE("открытое акционерное общество"),
    PHRASE("индивидуальный предприниматель"),
    PHRASE("частное унитарное предприятие"),
    PHRASE("федеральное государственное унитарное предприятие"),
    PHRASE("государственное унитарное предприятие"),
    PHRASE("муниципальное унитарное предприятие"),
    PHRASE("некоммерческая организация"),
    PHRASE("автономная некоммерческая организация"),
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
    PHRASE("plc"),
    PHRASE("p l c"),
    PHRASE("llp"),
    PHRASE("l l p"),
    PHRASE("pty"),
    PHRASE("limited liability company"),
    PHRASE("limited liability partnership"),
    PHRASE("public limited company"),
    /* Germany, Austria, Switzerland */
    PHRASE("gmbh"),
    PHRASE("g m b h"),
    PHRASE("mbh"),
    PHRASE("ohg"),
    PHRASE("ug haftungsbeschränkt"),
    PHRASE("gesellschaft mit beschränkter haftung"),
    PHRASE("aktiengesellschaft"),
    PHRASE("kommanditgesellschaft"),
    /* France, Belgium, Italy, Spain */
    PHRASE("sarl"),
    PHRASE("s a r l"),
    PHRASE("s a s"),
    PHRASE("sasu"),
    PHRASE("eurl"),
    PHRASE("société anonyme"),
    PHRASE("société par actions simplifiée"),
    PHRASE("société à responsabilité limitée"),
    PHRASE("srl"),
    PHRASE("s r l"),
    /* Netherlands, the Nordics */
    PHRASE("b v"),
    PHRASE("n v"),
    PHRASE("besloten vennootschap"),
    PHRASE("naamloze vennootschap"),
    PHRASE("oyj"),
    PHRASE("aktiebolag"),
    PHRASE("aktieselskab"),
    PHRASE("osakeyhtiö"),
    /* Poland: "Sp. z o.o.", "sp. k.", "spółka z ograniczoną odpowiedzialnością" */
    PHRASE("sp z o o"),
    PHRASE("sp z oo"),
    PHRASE("spółka z ograniczoną odpowiedzialnością"),
    PHRASE("spółka akcyjna"),
    PHRASE("spółka komandytowa"),
};

/*
 * Legal forms that are also words or names ("SA Recycling", "Co-op Foods", "AB InBev", "SAS
 * Institute"), removed only at the end of the name, after the core, where a legal form stands:
 * "Volvo AB", "Smith & Co.", "Acme GmbH & Co. KG" (GmbH goes wherever it is, then "co kg" at the
 * end). Repeatedly: "Acme Co. Ltd" loses "ltd", then "co".
 */
static const phrase legal_forms_at_end[] = {
    PHRASE("co"),   PHRASE("sa"),   PHRASE("s a"), PHRASE("sas"), PHRASE("spa"), PHRASE("s p a"),
    PHRASE("sl"),   PHRASE("s l"),  PHRASE("se"),  PHRASE("ag"),  PHRASE("a g"), PHRASE("kg"),
    PHRASE("ug"),   PHRASE("ev"),   PHRASE("e v"), PHRASE("nv"),  PHRASE("bv"),  PHRASE("ab"),
    PHRASE("publ"), PHRASE("as"),   PHRASE("a s"), PHRASE("asa"), PHRASE("aps"), PHRASE("oy"),
    PHRASE("sp k"), PHRASE("sp j"),
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
    {PHRASE("canada"), "CA"},
    {PHRASE("канада"), "CA"},
    {PHRASE("italy"), "IT"},
    {PHRASE("italia"), "IT"},
    {PHRASE("италия"), "IT"},
    {PHRASE("spain"), "ES"},
    {PHRASE("españa"), "ES"},
    {PHRASE("испания"), "ES"},
    {PHRASE("poland"), "PL"},
    {PHRASE("polska"), "PL"},
    {PHRASE("польша"), "PL"},
    {PHRASE("austria"), "AT"},
    {PHRASE("österreich"), "AT"},
    {PHRASE("австрия"), "AT"},
    {PHRASE("belgium"), "BE"},
    {PHRASE("бельгия"), "BE"},
    {PHRASE("switzerland"), "CH"},
    {PHRASE("schweiz"), "CH"},
    {PHRASE("швейцария"), "CH"},
    {PHRASE("sweden"), "SE"},
    {PHRASE("швеция"), "SE"},
    {PHRASE("norway"), "NO"},
    {PHRASE("норвегия"), "NO"},
    {PHRASE("denmark"), "DK"},
    {PHRASE("дания"), "DK"},
    {PHRASE("finland"), "FI"},
    {PHRASE("финляндия"), "FI"},
    {PHRASE("ireland"), "IE"},
    {PHRASE("ирландия"), "IE"},
    {PHRASE("portugal"), "PT"},
    {PHRASE("португалия"), "PT"},
    {PHRASE("czech republic"), "CZ"},
    {PHRASE("czechia"), "CZ"},
    {PHRASE("чехия"), "CZ"},
    {PHRASE("turkey"), "TR"},
    {PHRASE("türkiye"), "TR"},
    {PHRASE("турция"), "TR"},
    {PHRASE("israel"), "IL"},
    {PHRASE("израиль"), "IL"},
    {PHRASE("india"), "IN"},
    {PHRASE("индия"), "IN"},
    {PHRASE("japan"), "JP"},
    {PHRASE("япония"), "JP"},
    {PHRASE("south korea"), "KR"},
    {PHRASE("republic of korea"), "KR"},
    {PHRASE("южная корея"), "KR"},
    {PHRASE("singapore"), "SG"},
    {PHRASE("сингапур"), "SG"},
    {PHRASE("brazil"), "BR"},
    {PHRASE("бразилия"), "BR"},
    {PHRASE("mexico"), "MX"},
    {PHRASE("мексика"), "MX"},
    {PHRASE("new zealand"), "NZ"},
    {PHRASE("south africa"), "ZA"},
    {PHRASE("azerbaijan"), "AZ"},
    {PHRASE("азербайджан"), "AZ"},
    {PHRASE("moldova"), "MD"},
    {PHRASE("молдова"), "MD"},
    {PHRASE("latvia"), "LV"},
    {PHRASE("латвия"), "LV"},
    {PHRASE("lithuania"), "LT"},
    {PHRASE("литва"), "LT"},
    {PHRASE("estonia"), "EE"},
    {PHRASE("эстония"), "EE"},
    {PHRASE("serbia"), "RS"},
    {PHRASE("сербия"), "RS"},
    {PHRASE("tajikistan"), "TJ"},
    {PHRASE("таджикистан"), "TJ"},
    {PHRASE("turkmenistan"), "TM"},
    {PHRASE("туркменистан"), "TM"},
    {PHRASE("mongolia"), "MN"},
    {PHRASE("монголия"), "MN"},
    {PHRASE("vietnam"), "VN"},
    {PHRASE("viet nam"), "VN"},
    {PHRASE("вьетнам"), "VN"},
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
 * A phrase table bucketed by the first two characters of a word, which tell words apart
 * best (see phrase_key). Built once per normalizer, so that a word is compared with a few
 * phrases, not all of them.
 */
#define PHRASES_MAX 128

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

/*
 * The free domains as a set: open addressing over the file's own bytes, where each entry is
 * NUL-terminated in place. A slot holds an entry's offset + 1 (0: empty) and its length.
 */
typedef struct free_slot {
    uint32_t at;
    uint32_t len;
} free_slot;

typedef struct free_set {
    char *text;
    free_slot *slots;
    size_t mask; /* slot count - 1, a power of two minus one */
    size_t count;
} free_set;

struct am_normalizer {
    psl_ctx_t *psl;
    free_set free_domains;
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

/*
 * The bucket of the words at `w`: a mix of their first two characters, a word break and the end
 * counting as one. An ASCII character is its byte; a Cyrillic letter its second byte (the first is
 * 0xD0 or 0xD1 for every letter). It reads only bytes that a phrase matching at `w` must equal, or
 * the break after it, so a phrase and the words it matches land in one bucket. `w` is valid UTF-8
 * followed by a space or a NUL, so every byte read exists.
 */
static unsigned char phrase_key(const char *w)
{
    unsigned char c = (unsigned char)w[0], next;
    const char *second;

    if (c < 0x80) {
        second = w + 1;
    } else {
        c = (unsigned char)w[1];
        second = w + 2;
    }
    next = (unsigned char)second[0];
    if (next >= 0x80) {
        next = (unsigned char)second[1];
    }
    if (next == '\0') {
        next = ' ';
    }
    return (unsigned char)(c * 7u + next);
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

/* ---- the free domains ---------------------------------------------------------------------- */

/* FNV-1a: the set holds a few hundred short names. */
static uint32_t hash_bytes(const char *p, size_t len)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    }
    return h;
}

static bool free_set_has(const free_set *set, const char *h, size_t len)
{
    size_t i;

    if (!set->slots) {
        return false;
    }
    for (i = hash_bytes(h, len) & set->mask; set->slots[i].at; i = (i + 1) & set->mask) {
        const free_slot *slot = &set->slots[i];

        if (slot->len == len && memcmp(set->text + slot->at - 1, h, len) == 0) {
            return true;
        }
    }
    return false;
}

static void free_set_dispose(free_set *set)
{
    free(set->text);
    free(set->slots);
    memset(set, 0, sizeof(*set));
}

typedef enum host_kind { HOST_NAME, HOST_BAD, HOST_IP } host_kind;

static host_kind classify_host(const char *h, size_t len);

/*
 * Read the free domains from `path` into `set`: one domain a line, "#" to the end of a line is a
 * comment, blank lines are skipped. A line that is no domain fails with its line number.
 */
static am_status free_set_load(free_set *set, const char *path, am_error *err)
{
    am_status rc = AM_OK;
    FILE *f = NULL;
    char *text = NULL, *buf, q[QUOTE_MAX + 4];
    size_t size = 0, lines = 1, slots = 64, i, line_no = 0, pos = 0;

    memset(set, 0, sizeof(*set));
    f = fopen(path, "rb");
    if (!f) {
        rc = am_error_set(err, AM_EIO,
                          "cannot read the list of free-mail domains %s (%s); set "
                          "ACCTMAP_DATA_DIR to the directory that holds " FREE_DOMAINS_FILE,
                          path, strerror(errno));
        goto cleanup;
    }
    text = malloc(FREE_DOMAINS_MAX_BYTES + 1);
    if (!text) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    size = fread(text, 1, FREE_DOMAINS_MAX_BYTES + 1, f);
    if (ferror(f)) {
        rc = am_error_set(err, AM_EIO, "cannot read %s (%s)", path, strerror(errno));
        goto cleanup;
    }
    if (size > FREE_DOMAINS_MAX_BYTES) {
        rc = am_error_set(err, AM_EINPUT, "%s is over %d bytes; it should be a list of domains",
                          path, FREE_DOMAINS_MAX_BYTES);
        goto cleanup;
    }
    for (i = 0; i < size; i++) {
        lines += text[i] == '\n';
    }
    while (slots < 2 * lines) {
        slots *= 2;
    }
    set->slots = calloc(slots, sizeof(*set->slots));
    if (!set->slots) {
        rc = am_error_set(err, AM_ENOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    set->mask = slots - 1;
    set->text = buf = text;
    text = NULL; /* the set's now */

    while (pos < size) {
        char *line = buf + pos, *nl = memchr(line, '\n', size - pos), *hash, *b, *e;
        size_t slot;

        e = nl ? nl : buf + size;
        pos = (size_t)(e - buf) + 1;
        line_no++;
        hash = memchr(line, '#', (size_t)(e - line));
        if (hash) {
            e = hash;
        }
        for (b = line; b < e && (*b == ' ' || *b == '\t' || *b == '\r'); b++) {
        }
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
            e--;
        }
        if (b == e) {
            continue;
        }
        for (i = 0; i < (size_t)(e - b); i++) {
            b[i] = (char)ascii_lower((unsigned char)b[i]);
        }
        if (classify_host(b, (size_t)(e - b)) != HOST_NAME) {
            rc = am_error_set(err, AM_EINPUT,
                              "%s:%zu: \"%s\" is not a domain; write one domain a line, IDN in "
                              "punycode",
                              path, line_no, quote(q, b, (size_t)(e - b)));
            goto cleanup;
        }
        if (free_set_has(set, b, (size_t)(e - b))) {
            continue;
        }
        *e = '\0';
        for (slot = hash_bytes(b, (size_t)(e - b)) & set->mask; set->slots[slot].at;
             slot = (slot + 1) & set->mask) {
        }
        set->slots[slot].at = (uint32_t)(b - buf) + 1;
        set->slots[slot].len = (uint32_t)(e - b);
        set->count++;
    }
cleanup:
    if (f) {
        fclose(f);
    }
    if (rc) {
        free_set_dispose(set);
    }
    free(text);
    return rc;
}

/* ---- the normalizer ----------------------------------------------------------------------- */

am_status am_normalizer_new(am_normalizer **out, am_error *err)
{
    am_status rc = AM_OK;
    am_normalizer *n = NULL;
    const char *dir;
    char path[4096];

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
    dir = getenv("ACCTMAP_DATA_DIR");
    if (!dir || !*dir) {
        dir = AM_DATA_DIR;
    }
    if (snprintf(path, sizeof(path), "%s/" FREE_DOMAINS_FILE, dir) >= (int)sizeof(path)) {
        rc = am_error_set(err, AM_EIO,
                          "the data directory path is too long; set "
                          "ACCTMAP_DATA_DIR to a shorter one");
        goto cleanup;
    }
    rc = free_set_load(&n->free_domains, path, err);
    if (rc) {
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
    free_set_dispose(&n->free_domains);
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

/*
 * Whether `h` is one of the free domains or under one ("mail.ru", "e.mail.ru", not "gmail.ru"):
 * each of its suffixes of two labels or more is looked up.
 */
static bool is_free_host(const am_normalizer *n, const char *h, size_t len)
{
    const char *s = h, *e = h + len, *dot;

    while ((dot = memchr(s, '.', (size_t)(e - s))) != NULL) {
        if (free_set_has(&n->free_domains, s, (size_t)(e - s))) {
            return true;
        }
        s = dot + 1;
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

/*
 * Path segments that still name the company's own site, not a page on it that may be
 * someone else's: a language or locale ("en", "ru", "en-us", "pt_BR", "zh-hans"), the home
 * page under its usual file names ("index.php", "default.aspx", "home") and the pages where a
 * site describes its own company ("about-us", "contacts", "o-kompanii", "kontakty"), which
 * CRMs often hold instead of the home page. Compared without case and without an extension.
 */
static const char *const home_pages[] = {
    "index",      "default",    "home",      "main",       "start",    "about",
    "about-us",   "about_us",   "aboutus",   "company",    "contact",  "contacts",
    "contact-us", "contact_us", "contactus", "o-kompanii", "o-nas",    "kontakty",
    "о-нас",      "о-компании", "контакты",
};

static bool is_home_segment(const char *s, size_t len)
{
    size_t i, base;

    if (len == 0 || (len == 1 && s[0] == '.')) {
        return true;
    }
    for (i = 0; i < len && is_ascii_alpha((unsigned char)s[i]); i++) {
    }
    if (i == 2 && (len == 2 || ((s[2] == '-' || s[2] == '_') && (len == 5 || len == 7)))) {
        for (i = 3; i < len && is_ascii_alpha((unsigned char)s[i]); i++) {
        }
        if (i >= len) {
            return true; /* "en", "en-us", "pt_br", "zh-hans" */
        }
    }
    /* A listed page: "index", "index.php", "Contacts.html": the name and maybe an extension. */
    for (base = 0; base < len && s[base] != '.'; base++) {
    }
    for (i = base + 1; i < len && (is_ascii_alpha((unsigned char)s[i]) ||
                                   is_ascii_digit((unsigned char)s[i])); i++) {
    }
    if (base < len && i < len) {
        return false;
    }
    for (i = 0; i < COUNT(home_pages); i++) {
        if (ascii_ieq(s, base, home_pages[i])) {
            return true;
        }
    }
    return false;
}

/*
 * Whether the path at [p, e) (from the "/" after the host; the query and fragment are cut off
 * here) names a page of the site rather than its home: "/moscow/", "/catalog", "/en/about".
 */
static bool is_page_path(const char *p, const char *e)
{
    const char *s = p;

    while (s < e && *s != '?' && *s != '#') {
        const char *seg;
        for (; s < e && (*s == '/' || *s == '\\'); s++) {
        }
        for (seg = s; s < e && !memchr("/\\?#", *s, 4); s++) {
        }
        if (!is_home_segment(seg, (size_t)(s - seg))) {
            return true;
        }
    }
    return false;
}

am_status am_normalize_domain(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                              const char *in, size_t len, am_error *err)
{
    return am_normalize_site(out, cap, len_out, NULL, n, in, len, err);
}

am_status am_normalize_site(char *out, size_t cap, size_t *len_out, bool *page_out,
                            am_normalizer *n, const char *in, size_t len, am_error *err)
{
    am_status rc = AM_OK;
    uint8_t *ace = NULL;
    const char *p = in, *e = in + len, *host, *host_end, *path, *c, *reg, *tld;
    size_t hlen, i;
    bool ascii = true;
    host_kind kind;

    AM_ASSERT(out && len_out && n && (in || len == 0) && cap >= AM_NORM_MAX, err);
    out[0] = '\0';
    *len_out = 0;
    if (page_out) {
        *page_out = false;
    }

    trim_domain(&p, &e);
    if (p == e) {
        goto cleanup;
    }
    host = skip_scheme(p, e);
    /* The authority ends where the path, query or fragment starts ("/index.php?x", "#top"). */
    for (host_end = host; host_end < e && !memchr("/\\?#", *host_end, 4); host_end++) {
    }
    path = host_end;
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
    if (is_free_host(n, n->host, hlen)) {
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
    if (page_out) {
        *page_out = is_page_path(path, e);
    }
cleanup:
    idn2_free(ace);
    return rc;
}

/* ---- name, city, country ------------------------------------------------------------------ */

/*
 * Drop legal_forms_at_end from the end of the name value `out` (`len` bytes), again and again
 * ("acme ag co kg" -> "acme"); returns the new length.
 */
static size_t strip_forms_at_end(char *out, size_t len)
{
    size_t i;
    bool again = true;

    while (again && len > 0) {
        again = false;
        for (i = 0; i < COUNT(legal_forms_at_end); i++) {
            const phrase *f = &legal_forms_at_end[i];

            if (f->len <= len && out[len - 1] == f->text[f->len - 1] &&
                (f->len == len || out[len - f->len - 1] == ' ') &&
                memcmp(out + len - f->len, f->text, f->len) == 0) {
                len -= f->len;
                len -= len > 0; /* the space before it */
                again = true;
                break;
            }
        }
    }
    out[len] = '\0';
    return len;
}

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
    *len_out = strip_forms_at_end(out, emit_words(out, n->words, wlen, &n->legal_forms));
    return AM_OK;
}

/*
 * The legal form of an individual entrepreneur, after folding: "ИП" or "Индивидуальный
 * предприниматель" at the start ("ИП Иванов И.И.") or at the end, the 1C and registry order
 * ("Иванов Иван Иванович, ИП"). Latin "IP" is not read: it is as often "IP" of an internet or
 * intellectual-property company ("IP Telecom") as a transliterated ИП.
 */
bool am_normalize_name_is_person(am_normalizer *n, const char *in, size_t len)
{
    static const phrase forms[] = {
        PHRASE("ип"),
        PHRASE("индивидуальный предприниматель"),
    };
    am_error ignored = {AM_OK, ""};
    size_t wlen = 0, i;
    const char *w;

    if (!n || (!in && len > 0)) {
        return false;
    }
    /* Both forms are Cyrillic: plain ASCII is never a person's name here. */
    for (i = 0; i < len && (unsigned char)in[i] < 0x80; i++) {
    }
    if (i == len || fold_words(n, &wlen, in, len, "name", &ignored) != AM_OK) {
        return false;
    }
    w = n->words;
    for (i = 0; i < COUNT(forms); i++) {
        const phrase *f = &forms[i];

        if (wlen < f->len) {
            continue;
        }
        if (memcmp(w, f->text, f->len) == 0 && (wlen == f->len || w[f->len] == ' ')) {
            return true;
        }
        if (memcmp(w + wlen - f->len, f->text, f->len) == 0 && w[wlen - f->len - 1] == ' ') {
            return true;
        }
    }
    return false;
}

/* ---- transliteration ------------------------------------------------------------------- */

/* Cyrillic letters (after case folding) and their Latin spelling. */
static const struct {
    utf8proc_int32_t cp;
    const char *latin;
} latin_letters[] = {
    {0x0430, "a"},  {0x0431, "b"},  {0x0432, "v"},    {0x0433, "g"},  {0x0434, "d"},
    {0x0435, "e"},  {0x0451, "e"},  {0x0436, "zh"},   {0x0437, "z"},  {0x0438, "i"},
    {0x0439, "y"},  {0x043a, "k"},  {0x043b, "l"},    {0x043c, "m"},  {0x043d, "n"},
    {0x043e, "o"},  {0x043f, "p"},  {0x0440, "r"},    {0x0441, "s"},  {0x0442, "t"},
    {0x0443, "u"},  {0x0444, "f"},  {0x0445, "kh"},   {0x0446, "ts"}, {0x0447, "ch"},
    {0x0448, "sh"}, {0x0449, "shch"}, {0x044a, ""},   {0x044b, "y"},  {0x044c, ""},
    {0x044d, "e"},  {0x044e, "yu"}, {0x044f, "ya"},
    /* Ukrainian, Belarusian, Kazakh letters a CIS name may carry */
    {0x0456, "i"},  {0x0457, "yi"}, {0x0454, "ye"},   {0x0491, "g"},  {0x045e, "u"},
    {0x04d9, "a"},  {0x0493, "g"},  {0x049b, "k"},    {0x04a3, "n"},  {0x04e9, "o"},
    {0x04b1, "u"},  {0x04af, "u"},  {0x04bb, "h"},
};

am_status am_normalize_name_latin(char *out, size_t cap, size_t *len_out, const char *core,
                                  size_t len, am_error *err)
{
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)core;
    size_t pos = 0, used = 0, i;
    bool cyrillic = false;

    AM_ASSERT(out && len_out && cap >= AM_NORM_MAX && (core || len == 0), err);
    *len_out = 0;
    out[0] = '\0';
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + pos, (utf8proc_ssize_t)(len - pos), &cp);
        const char *latin = NULL;
        char ascii[2] = {0, 0};
        size_t add;

        if (n <= 0) {
            return AM_OK; /* not from am_normalize_name: no spelling rather than a wrong one */
        }
        if (cp < 0x80) {
            ascii[0] = (char)cp;
            latin = ascii;
        } else {
            for (i = 0; i < sizeof(latin_letters) / sizeof(latin_letters[0]); i++) {
                if (latin_letters[i].cp == cp) {
                    latin = latin_letters[i].latin;
                    cyrillic = true;
                    break;
                }
            }
            if (!latin) {
                return AM_OK;
            }
        }
        add = strlen(latin);
        if (used + add >= cap) {
            return AM_OK;
        }
        memcpy(out + used, latin, add);
        used += add;
        pos += (size_t)n;
    }
    if (!cyrillic) {
        out[0] = '\0';
        return AM_OK;
    }
    out[used] = '\0';
    *len_out = used;
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
 * How a tax id is read. CRMs hold ids as people type them: "ИНН 7707083893", "INN: 7707083893",
 * "7707083893/770701001" (INN/KPP), "DE 811 569 869", "VAT No. DE811569869", "D-U-N-S
 * 15-048-3782". So: (1) leading label words ("ИНН", "VAT No.", "D-U-N-S") give a hint of the
 * scheme; (2) blanks and dashes are dropped from the rest, and a "/", ",", ";" or the word "КПП"
 * ends the id (what follows must be a KPP, which names a branch and is never a key); (3) a
 * two-letter prefix ("RU", "DE", "FR") says whose id it is, else the record's country does; (4) the
 * scheme's check runs. A label wins over a prefix, a prefix over the record's country.
 *
 *   RU or no country  INN (10 or 12 digits), OGRN (13), OGRNIP (15). A 9- or 11-digit value
 *                     whose zero-padded form passes the INN check lost its leading zero in a
 *                     spreadsheet (regions 01-09): it gets it back, flagged zero_restored. Not
 *                     a 9-digit value shaped like a KPP ("XXXX01001"), which passes by chance.
 *   KZ                BIN, and the IIN of a person (same check; the 5th digit, the first of a
 *                     birth day, is 0-3 in an IIN and 4-6 in a BIN).
 *   BY                UNP, digit form; the letter forms of individuals are no key.
 *   FR                SIREN (9 digits), SIRET (14), VAT (FR, a 2-character key, the SIREN): all
 *                     give the SIREN, so a company's SIRET and VAT meet its SIREN.
 *   EU VAT            AT, BE, DE, ES, IT, NL, PL are checked; other EU prefixes give no key.
 *   DUNS              9 digits with no check digit, so a bare 9-digit number also reads as an
 *                     INN that lost its zero, a SIREN or a UNP. A DUNS is taken only with a
 *                     "DUNS" label (7 or 8 digits are zero-padded), in the D-U-N-S form
 *                     "15-048-3782" with no country or one outside RU/KZ/BY/FR, or as 7 to 9
 *                     plain digits in a US, GB, CA or AU record ("12-3456789" there is a US EIN:
 *                     no key).
 *   anything else     no key (AM_OK, length 0): an id we cannot check is not a key.
 */

typedef enum tax_hint {
    HINT_NONE,
    HINT_INN,
    HINT_KPP,
    HINT_OGRN,
    HINT_OGRNIP,
    HINT_BIN,
    HINT_UNP,
    HINT_DUNS,
    HINT_FR,
    HINT_VAT,
} tax_hint;

/*
 * Label words, folded and joined without separators ("D-U-N-S" is "duns", "ИНН/КПП" is
 * "иннкпп", "USt-IdNr." is "ustidnr"). Our own values start with labels too ("RU-OGRN",
 * "KZ-BIN", "VAT-", "DUNS", "FR-SIREN"), so a value normalizes to itself.
 */
static const struct tax_label {
    const char *text;
    tax_hint hint;
} tax_labels[] = {
    {"инн", HINT_INN},       {"inn", HINT_INN},         {"иннкпп", HINT_INN},
    {"innkpp", HINT_INN},    {"кпп", HINT_KPP},         {"kpp", HINT_KPP},
    {"огрн", HINT_OGRN},     {"ogrn", HINT_OGRN},       {"ruogrn", HINT_OGRN},
    {"огрнип", HINT_OGRNIP}, {"ogrnip", HINT_OGRNIP},   {"ruogrnip", HINT_OGRNIP},
    {"бин", HINT_BIN},       {"bin", HINT_BIN},         {"иин", HINT_BIN},
    {"iin", HINT_BIN},       {"kzbin", HINT_BIN},       {"унп", HINT_UNP},
    {"unp", HINT_UNP},       {"byunp", HINT_UNP},       {"duns", HINT_DUNS},
    {"dunsno", HINT_DUNS},   {"dunsnumber", HINT_DUNS}, {"siren", HINT_FR},
    {"siret", HINT_FR},      {"frsiren", HINT_FR},      {"vat", HINT_VAT},
    {"vatno", HINT_VAT},     {"vatnr", HINT_VAT},       {"vatnumber", HINT_VAT},
    {"vatid", HINT_VAT},     {"ustidnr", HINT_VAT},     {"ustid", HINT_VAT},
    {"tva", HINT_VAT},       {"btw", HINT_VAT},         {"iva", HINT_VAT},
    {"piva", HINT_VAT},      {"nip", HINT_VAT},         {"nif", HINT_VAT},
    {"cif", HINT_VAT},
};

/* Result of a format check: the form, then the check digit. */
typedef enum id_check { ID_OK, ID_BAD_FORM, ID_BAD_CHECK } id_check;

typedef id_check (*vat_check_fn)(const char *s, size_t n, bool *person);

static id_check vat_at(const char *s, size_t n, bool *person);
static id_check vat_be(const char *s, size_t n, bool *person);
static id_check vat_de(const char *s, size_t n, bool *person);
static id_check vat_es(const char *s, size_t n, bool *person);
static id_check vat_it(const char *s, size_t n, bool *person);
static id_check vat_nl(const char *s, size_t n, bool *person);
static id_check vat_pl(const char *s, size_t n, bool *person);

/*
 * EU VAT prefixes (Greece is EL; XI is Northern Ireland). France is read as a SIREN. A prefix
 * with no check here gives no key: an unchecked number would be a weaker key than the rest.
 */
static const struct eu_vat {
    char cc[3];
    vat_check_fn check;
    const char *form;
} eu_vats[] = {
    {"AT", vat_at, "ATU and 8 digits"},
    {"BE", vat_be, "BE and 10 digits"},
    {"BG", NULL, NULL},
    {"CY", NULL, NULL},
    {"CZ", NULL, NULL},
    {"DE", vat_de, "DE and 9 digits"},
    {"DK", NULL, NULL},
    {"EE", NULL, NULL},
    {"EL", NULL, NULL},
    {"ES", vat_es, "ES and 9 characters: a letter or digit, 7 digits, a letter or digit"},
    {"FI", NULL, NULL},
    {"HR", NULL, NULL},
    {"HU", NULL, NULL},
    {"IE", NULL, NULL},
    {"IT", vat_it, "IT and 11 digits"},
    {"LT", NULL, NULL},
    {"LU", NULL, NULL},
    {"LV", NULL, NULL},
    {"MT", NULL, NULL},
    {"NL", vat_nl, "NL, 9 digits, B and 2 digits"},
    {"PL", vat_pl, "PL and 10 digits"},
    {"PT", NULL, NULL},
    {"RO", NULL, NULL},
    {"SE", NULL, NULL},
    {"SI", NULL, NULL},
    {"SK", NULL, NULL},
    {"XI", NULL, NULL},
};

static const struct eu_vat *find_eu_vat(const char *cc)
{
    size_t i;

    for (i = 0; i < COUNT(eu_vats); i++) {
        if (cc[0] == eu_vats[i].cc[0] && cc[1] == eu_vats[i].cc[1]) {
            return &eu_vats[i];
        }
    }
    return NULL;
}

static bool all_digits(const char *d, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!is_ascii_digit((unsigned char)d[i])) {
            return false;
        }
    }
    return true;
}

/* `n` <= 18 digits as a number. */
static uint64_t digits_value(const char *d, size_t n)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        v = v * 10 + (uint64_t)(d[i] - '0');
    }
    return v;
}

/* Luhn over `n` digits, the last being the check digit (SIREN, SIRET, Italian VAT). */
static bool luhn_valid(const char *d, size_t n)
{
    int sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';

        if (i % 2 == 1) {
            v *= 2;
            v -= v > 9 ? 9 : 0;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

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

/* OGRN: the first 12 digits mod 11, mod 10; OGRNIP: the first 14 mod 13, mod 10. */
static bool ogrn_valid(const char *d, size_t n)
{
    uint64_t mod = n == 13 ? 11 : 13;

    return (int)(digits_value(d, n - 1) % mod % 10) == d[n - 1] - '0';
}

/*
 * Kazakh BIN/IIN: weights 1..11 mod 11; a remainder of 10 means a second pass with weights
 * 3..11, 1, 2; 10 again is no valid id.
 */
static bool bin_valid(const char *d)
{
    int sum = 0, i;

    for (i = 0; i < 11; i++) {
        sum += (d[i] - '0') * (i + 1);
    }
    sum %= 11;
    if (sum == 10) {
        sum = 0;
        for (i = 0; i < 11; i++) {
            sum += (d[i] - '0') * ((i + 2) % 11 + 1);
        }
        sum %= 11;
    }
    return sum != 10 && sum == d[11] - '0';
}

/* Belarusian UNP, digit form: weights 29, 23, 19, 17, 13, 7, 5, 3 mod 11; 10 is invalid. */
static bool unp_valid(const char *d)
{
    static const int weights[] = {29, 23, 19, 17, 13, 7, 5, 3};
    int sum = 0;
    size_t i;

    for (i = 0; i < COUNT(weights); i++) {
        sum += (d[i] - '0') * weights[i];
    }
    sum %= 11;
    return sum != 10 && sum == d[8] - '0';
}

/* SIRET: Luhn, except La Poste's establishments (SIREN 356000000), whose digits sum to 5k. */
static bool siret_valid(const char *d)
{
    int sum = 0;
    size_t i;

    if (memcmp(d, "356000000", 9) != 0) {
        return luhn_valid(d, 14);
    }
    for (i = 0; i < 14; i++) {
        sum += d[i] - '0';
    }
    return sum % 5 == 0;
}

/* Germany: 9 digits, ISO 7064 MOD 11,10. */
static id_check vat_de(const char *s, size_t n, bool *person)
{
    int p = 10, c;
    size_t i;

    (void)person;
    if (n != 9 || !all_digits(s, n) || s[0] == '0') {
        return ID_BAD_FORM;
    }
    for (i = 0; i < 8; i++) {
        int sum = (s[i] - '0' + p) % 10;

        p = (2 * (sum ? sum : 10)) % 11;
    }
    c = 11 - p;
    return (c == 10 ? 0 : c) == s[8] - '0' ? ID_OK : ID_BAD_CHECK;
}

/* Austria: "U" and 8 digits; Luhn-like sum over the first 7 plus 4. */
static id_check vat_at(const char *s, size_t n, bool *person)
{
    int sum = 0;
    size_t i;

    (void)person;
    if (n != 9 || s[0] != 'U' || !all_digits(s + 1, 8)) {
        return ID_BAD_FORM;
    }
    for (i = 0; i < 7; i++) {
        int v = s[1 + i] - '0';

        if (i % 2 == 1) {
            v *= 2;
            v = v / 10 + v % 10;
        }
        sum += v;
    }
    return (10 - (sum + 4) % 10) % 10 == s[8] - '0' ? ID_OK : ID_BAD_CHECK;
}

/* Belgium: 10 digits starting 0 or 1; the last two are 97 minus the first 8 mod 97. */
static id_check vat_be(const char *s, size_t n, bool *person)
{
    (void)person;
    if (n != 10 || !all_digits(s, n) || s[0] > '1') {
        return ID_BAD_FORM;
    }
    return 97 - digits_value(s, 8) % 97 == digits_value(s + 8, 2) ? ID_OK : ID_BAD_CHECK;
}

/* Italy: 11 digits, Luhn. */
static id_check vat_it(const char *s, size_t n, bool *person)
{
    (void)person;
    if (n != 11 || !all_digits(s, n)) {
        return ID_BAD_FORM;
    }
    return luhn_valid(s, n) ? ID_OK : ID_BAD_CHECK;
}

/*
 * Netherlands: 9 digits, "B", 2 digits. Companies' numbers pass the old mod 11 test; the numbers
 * given to sole traders since 2020 pass ISO 7064 MOD 97-10 over "NL" and the number instead.
 */
static id_check vat_nl(const char *s, size_t n, bool *person)
{
    int sum = 0, r = (23 * 100 + 21) % 97; /* "N" = 23, "L" = 21 */
    size_t i;

    (void)person;
    if (n != 12 || !all_digits(s, 9) || s[9] != 'B' || !all_digits(s + 10, 2)) {
        return ID_BAD_FORM;
    }
    for (i = 0; i < 8; i++) {
        sum += (s[i] - '0') * (int)(9 - i);
    }
    sum %= 11;
    if (sum < 10 && sum == s[8] - '0') {
        return ID_OK;
    }
    for (i = 0; i < n; i++) {
        r = s[i] == 'B' ? (r * 100 + 11) % 97 : (r * 10 + (s[i] - '0')) % 97;
    }
    return r == 1 ? ID_OK : ID_BAD_CHECK;
}

/* Poland: the 10-digit NIP, weights 6, 5, 7, 2, 3, 4, 5, 6, 7 mod 11; 10 is invalid. */
static id_check vat_pl(const char *s, size_t n, bool *person)
{
    static const int weights[] = {6, 5, 7, 2, 3, 4, 5, 6, 7};
    int sum = 0;
    size_t i;

    (void)person;
    if (n != 10 || !all_digits(s, n)) {
        return ID_BAD_FORM;
    }
    for (i = 0; i < COUNT(weights); i++) {
        sum += (s[i] - '0') * weights[i];
    }
    sum %= 11;
    return sum != 10 && sum == s[9] - '0' ? ID_OK : ID_BAD_CHECK;
}

/*
 * Spain: a person's DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits, a letter), whose
 * letter is the number mod 23; or a company's CIF (a letter for the kind of entity, 7 digits, a
 * control digit or letter). Entities K, L, M, N, P, Q, R, S, W take a letter, A, B, E, H a digit.
 */
static id_check vat_es(const char *s, size_t n, bool *person)
{
    static const char dni_letters[] = "TRWAGMYFPDXBNJZSQVHLCKE";
    const char *x;
    int sum = 0, c, i;

    if (n != 9) {
        return ID_BAD_FORM;
    }
    if (is_ascii_digit((unsigned char)s[0]) || (x = memchr("XYZ", s[0], 3)) != NULL) {
        uint64_t num;

        if (!all_digits(s + 1, 7) || !is_ascii_alpha((unsigned char)s[8]) ||
            (!is_ascii_digit((unsigned char)s[0]) && s[0] != 'X' && s[0] != 'Y' && s[0] != 'Z')) {
            return ID_BAD_FORM;
        }
        num = digits_value(s + 1, 7);
        num +=
            (uint64_t)(is_ascii_digit((unsigned char)s[0]) ? s[0] - '0' : s[0] - 'X') * 10000000u;
        *person = true;
        return dni_letters[num % 23] == s[8] ? ID_OK : ID_BAD_CHECK;
    }
    if (!memchr("ABCDEFGHJKLMNPQRSUVW", s[0], 20) || !all_digits(s + 1, 7) ||
        !(is_ascii_digit((unsigned char)s[8]) || (s[8] >= 'A' && s[8] <= 'J'))) {
        return ID_BAD_FORM;
    }
    for (i = 0; i < 7; i++) {
        int v = s[1 + i] - '0';

        if (i % 2 == 0) {
            v *= 2;
            v = v / 10 + v % 10;
        }
        sum += v;
    }
    c = (10 - sum % 10) % 10;
    *person = s[0] == 'K' || s[0] == 'L' || s[0] == 'M';
    if (memchr("KLMNPQRSW", s[0], 9)) {
        return s[8] == "JABCDEFGHI"[c] ? ID_OK : ID_BAD_CHECK;
    }
    if (memchr("ABEH", s[0], 4)) {
        return s[8] - '0' == c ? ID_OK : ID_BAD_CHECK;
    }
    return s[8] - '0' == c || s[8] == "JABCDEFGHI"[c] ? ID_OK : ID_BAD_CHECK;
}

/*
 * The letter at [p, e) folded to lower case into `dst` (1 or 2 bytes, `*dst_len`); returns
 * how many bytes of the input it took, 0 when *p is not a letter. Labels are ASCII or basic
 * Cyrillic (U+0410..U+044F), so that is all this knows.
 */
static size_t fold_letter(char dst[2], size_t *dst_len, const char *p, const char *e)
{
    unsigned char c = (unsigned char)p[0], c2;

    if (is_ascii_alpha(c)) {
        dst[0] = (char)ascii_lower(c);
        *dst_len = 1;
        return 1;
    }
    if (e - p < 2 || (c != 0xD0 && c != 0xD1)) {
        return 0;
    }
    c2 = (unsigned char)p[1];
    if (c == 0xD0 && c2 >= 0x90 && c2 <= 0x9F) { /* А..П */
        dst[0] = (char)0xD0;
        dst[1] = (char)(c2 + 0x20);
    } else if (c == 0xD0 && c2 >= 0xA0 && c2 <= 0xAF) { /* Р..Я */
        dst[0] = (char)0xD1;
        dst[1] = (char)(c2 - 0x20);
    } else if ((c == 0xD0 && c2 >= 0xB0) || (c == 0xD1 && c2 >= 0x80 && c2 <= 0x8F)) {
        dst[0] = (char)c;
        dst[1] = (char)c2;
    } else {
        return 0;
    }
    *dst_len = 2;
    return 2;
}

/* Length of a separator between label words at [p, e): a blank, a dash, ":", ".", "#", "/", "№". */
static size_t label_separator(const char *p, const char *e)
{
    size_t n = prefix_in(blanks, COUNT(blanks), p, e);

    if (!n) {
        n = prefix_in(dashes, COUNT(dashes), p, e);
    }
    if (!n && memchr(":.#/", *p, 4)) {
        n = 1;
    }
    if (!n && e - p >= 3 && memcmp(p, "\xE2\x84\x96", 3) == 0) { /* U+2116 № */
        n = 3;
    }
    return n;
}

/*
 * Letters at [*pp, e) folded and appended to cat (`*cat_len` bytes, at most `cap`); moves *pp past
 * them. Returns false when they do not fit: no label is that long.
 */
static bool append_word(char *cat, size_t cap, size_t *cat_len, const char **pp, const char *e)
{
    char l[2];
    size_t took, llen = 0;

    while (*pp < e && (took = fold_letter(l, &llen, *pp, e)) > 0) {
        if (*cat_len + llen >= cap) {
            return false;
        }
        memcpy(cat + *cat_len, l, llen);
        *cat_len += llen;
        *pp += took;
    }
    cat[*cat_len] = '\0';
    return true;
}

static const struct tax_label *find_tax_label(const char *cat, size_t len)
{
    size_t i;

    for (i = 0; i < COUNT(tax_labels); i++) {
        if (strlen(tax_labels[i].text) == len && memcmp(tax_labels[i].text, cat, len) == 0) {
            return &tax_labels[i];
        }
    }
    return NULL;
}

/*
 * The longest run of up to 6 label words at [p, e) that spells a label ("VAT No.", "D-U-N-S"),
 * and the separators after it; returns where the id starts (p when there is no label).
 */
static const char *skip_tax_labels(tax_hint *hint, const char *p, const char *e)
{
    char cat[32];
    size_t cat_len = 0, skip;
    const char *q = p, *best = p, *word;
    int words;

    *hint = HINT_NONE;
    for (words = 0; words < 6; words++) {
        const struct tax_label *label;

        while (q < e && (skip = label_separator(q, e)) > 0) {
            q += skip;
        }
        word = q;
        if (!append_word(cat, sizeof(cat), &cat_len, &q, e) || q == word) {
            break;
        }
        label = find_tax_label(cat, cat_len);
        if (label) {
            *hint = label->hint;
            best = q;
        }
    }
    if (best != p) {
        while (best < e && (skip = label_separator(best, e)) > 0 && *best != '/') {
            best += skip;
        }
    }
    return best;
}

/* Whether the word at [p, e) is "КПП" or "KPP" ("7707083893 КПП 770701001"). */
static bool is_kpp_word(const char *p, const char *e)
{
    char cat[8];
    size_t cat_len = 0;

    return append_word(cat, sizeof(cat), &cat_len, &p, e) &&
           (strcmp(cat, "кпп") == 0 || strcmp(cat, "kpp") == 0);
}

/*
 * What may follow an INN: its KPP, 9 characters: the tax office (4 digits), the reason (2 digits
 * or capital letters), a number (3 digits); optionally labelled "КПП".
 */
static bool kpp_valid(const char *p, const char *e)
{
    char k[9];
    size_t n = 0, skip, i;
    tax_hint hint;

    trim_blanks(&p, &e);
    p = skip_tax_labels(&hint, p, e);
    if (hint != HINT_NONE && hint != HINT_KPP) {
        return false;
    }
    while (p < e) {
        skip = prefix_in(blanks, COUNT(blanks), p, e);
        if (!skip) {
            skip = prefix_in(dashes, COUNT(dashes), p, e);
        }
        if (skip) {
            p += skip;
            continue;
        }
        if (n == sizeof(k)) {
            return false;
        }
        k[n++] = *p++;
    }
    if (n != 9 || !all_digits(k, 4) || !all_digits(k + 6, 3)) {
        return false;
    }
    for (i = 4; i < 6; i++) {
        if (!is_ascii_digit((unsigned char)k[i]) && !(k[i] >= 'A' && k[i] <= 'Z')) {
            return false;
        }
    }
    return true;
}

/* A 9-digit value shaped like a KPP: reason 01, 43 or 45, number 001 ("770701001"). */
static bool kpp_lookalike(const char *d)
{
    return memcmp(d + 6, "001", 3) == 0 &&
           (memcmp(d + 4, "01", 2) == 0 || memcmp(d + 4, "43", 2) == 0 ||
            memcmp(d + 4, "45", 2) == 0);
}

typedef enum tax_route {
    ROUTE_NONE,
    ROUTE_RU,
    ROUTE_KZ,
    ROUTE_BY,
    ROUTE_FR,
    ROUTE_VAT,
    ROUTE_DUNS,
} tax_route;

/* One tax id being read. */
typedef struct tax_reading {
    am_tax_id *out;
    const char *in; /* the whole input, for messages */
    size_t len;
    const char *country; /* the record's, "" when unknown */
    tax_hint hint;
    char cc[3];       /* the id's own country prefix, upper case, "" when none */
    const char *body; /* the id without separators and prefix */
    size_t n;
    bool too_long;   /* more than TAX_ID_MAX characters: n is a lower bound */
    uint64_t dashes; /* bit i: a dash stood before body[i] (only without a prefix) */
} tax_reading;

static am_status tax_fail(const tax_reading *t, am_error *err, const char *what)
{
    char q[QUOTE_MAX + 4];

    return am_error_set(err, AM_EINPUT, "tax id \"%s\" %s", quote(q, t->in, t->len), what);
}

static am_status tax_fails_check(const tax_reading *t, am_error *err, const char *scheme)
{
    char q[QUOTE_MAX + 4];

    return am_error_set(err, AM_EINPUT, "tax id \"%s\" fails its %s check digit",
                        quote(q, t->in, t->len), scheme);
}

static am_status tax_wrong_length(const tax_reading *t, am_error *err, const char *rule)
{
    char q[QUOTE_MAX + 4];

    return am_error_set(err, AM_EINPUT, "tax id \"%s\" has %s%zu digits; %s%s",
                        quote(q, t->in, t->len), t->too_long ? "more than " : "", t->n, rule,
                        t->country[0] || t->cc[0] || t->hint != HINT_NONE
                            ? ""
                            : " (with no country, an id is read as Russian)");
}

/* Digits only and not all zeros (the placeholder CRMs hold when the id is unknown). */
static am_status tax_check_digits(const tax_reading *t, am_error *err, const char *rule)
{
    char q[QUOTE_MAX + 4];
    size_t i;

    if (!all_digits(t->body, t->n)) {
        return am_error_set(err, AM_EINPUT,
                            "tax id \"%s\" has characters other than digits; %s "
                            "digits",
                            quote(q, t->in, t->len), rule);
    }
    for (i = 0; i < t->n && t->body[i] == '0'; i++) {
    }
    if (i == t->n) {
        return tax_fail(t, err, "is a placeholder, not a tax id");
    }
    return AM_OK;
}

static am_status tax_emit(am_tax_id *out, am_tax_scheme scheme, const char *prefix, const char *d,
                          size_t n, bool person)
{
    size_t plen = strlen(prefix);

    memcpy(out->value, prefix, plen);
    memcpy(out->value + plen, d, n);
    out->value[plen + n] = '\0';
    out->len = plen + n;
    out->scheme = scheme;
    out->person = person;
    return AM_OK;
}

static am_status tax_ru(const tax_reading *t, am_error *err)
{
    const char *rule = t->hint == HINT_OGRN     ? "an OGRN has 13"
                       : t->hint == HINT_OGRNIP ? "an OGRNIP has 15"
                       : t->hint == HINT_INN    ? "a Russian INN has 10 or 12"
                                                : "a Russian INN has 10 or 12, an OGRN 13, an "
                                                  "OGRNIP 15";
    bool inn_ok = t->hint == HINT_NONE || t->hint == HINT_INN;
    am_status rc = tax_check_digits(t, err, rule);
    char padded[12];

    if (rc) {
        return rc;
    }
    if (t->too_long) {
        return tax_wrong_length(t, err, rule);
    }
    if ((t->n == 10 || t->n == 12) && inn_ok) {
        if (!inn_valid(t->body, t->n)) {
            return tax_fails_check(t, err, "INN");
        }
        return tax_emit(t->out, AM_TAX_RU_INN, "RU", t->body, t->n, t->n == 12);
    }
    if (t->n == 13 && (t->hint == HINT_NONE || t->hint == HINT_OGRN)) {
        if (!ogrn_valid(t->body, t->n)) {
            return tax_fails_check(t, err, "OGRN");
        }
        return tax_emit(t->out, AM_TAX_RU_OGRN, "RU-OGRN", t->body, t->n, false);
    }
    if (t->n == 15 && (t->hint == HINT_NONE || t->hint == HINT_OGRNIP)) {
        if (!ogrn_valid(t->body, t->n)) {
            return tax_fails_check(t, err, "OGRNIP");
        }
        return tax_emit(t->out, AM_TAX_RU_OGRNIP, "RU-OGRNIP", t->body, t->n, true);
    }
    /* A number that lost its leading zero: only a plain number in a Russian or unknown record. */
    if ((t->n == 9 || t->n == 11) && inn_ok && !t->cc[0] && t->body[0] != '0' &&
        (!t->country[0] || strcmp(t->country, "RU") == 0) &&
        !(t->n == 9 && kpp_lookalike(t->body))) {
        padded[0] = '0';
        memcpy(padded + 1, t->body, t->n);
        if (inn_valid(padded, t->n + 1)) {
            t->out->zero_restored = true;
            return tax_emit(t->out, AM_TAX_RU_INN, "RU", padded, t->n + 1, t->n == 11);
        }
    }
    return tax_wrong_length(t, err, rule);
}

static am_status tax_kz(const tax_reading *t, am_error *err)
{
    am_status rc = tax_check_digits(t, err, "a Kazakh BIN has 12");

    if (rc) {
        return rc;
    }
    if (t->too_long || t->n != 12) {
        return tax_wrong_length(t, err, "a Kazakh BIN has 12");
    }
    if (!bin_valid(t->body)) {
        return tax_fails_check(t, err, "BIN");
    }
    return tax_emit(t->out, AM_TAX_KZ_BIN, "KZ-BIN", t->body, t->n, t->body[4] <= '3');
}

static am_status tax_by(const tax_reading *t, am_error *err)
{
    am_status rc;
    size_t i;

    /* The letter forms ("AB1234567", individuals in some regions) are not checked: no key. */
    if (t->n == 9 && !t->too_long && is_ascii_alpha((unsigned char)t->body[0])) {
        for (i = 1; i < 9 && (is_ascii_alpha((unsigned char)t->body[i]) ||
                              is_ascii_digit((unsigned char)t->body[i]));
             i++) {
        }
        if (i == 9) {
            return AM_OK;
        }
    }
    rc = tax_check_digits(t, err, "a Belarusian UNP has 9");
    if (rc) {
        return rc;
    }
    if (t->too_long || t->n != 9) {
        return tax_wrong_length(t, err, "a Belarusian UNP has 9");
    }
    if (!unp_valid(t->body)) {
        return tax_fails_check(t, err, "UNP");
    }
    return tax_emit(t->out, AM_TAX_BY_UNP, "BY-UNP", t->body, t->n, false);
}

static am_status tax_fr(const tax_reading *t, am_error *err)
{
    static const char rule[] = "a SIREN has 9, a SIRET 14, a French VAT number 11 after FR";
    const char *siren = t->body;
    am_status rc;

    /* VAT: FR, a key of 2 digits (or letters, for numbers given since 2000), the SIREN. */
    if (t->cc[0] && t->n == 11 && !t->too_long) {
        const char *key = t->body;

        siren = t->body + 2;
        if (!all_digits(siren, 9) ||
            !((is_ascii_digit((unsigned char)key[0]) && is_ascii_digit((unsigned char)key[1])) ||
              (is_ascii_alpha((unsigned char)key[0]) && is_ascii_alpha((unsigned char)key[1])))) {
            return tax_fail(t, err, "is not a French VAT number (FR, a 2-character key, 9 digits)");
        }
        if (is_ascii_digit((unsigned char)key[0]) &&
            (int)digits_value(key, 2) != (int)((12 + 3 * (digits_value(siren, 9) % 97)) % 97)) {
            return tax_fails_check(t, err, "FR VAT");
        }
        if (!luhn_valid(siren, 9)) {
            return tax_fails_check(t, err, "SIREN");
        }
        return tax_emit(t->out, AM_TAX_FR_SIREN, "FR-SIREN", siren, 9, false);
    }
    rc = tax_check_digits(t, err, rule);
    if (rc) {
        return rc;
    }
    if (t->too_long || (t->n != 9 && t->n != 14)) {
        return tax_wrong_length(t, err, rule);
    }
    if (t->n == 14 && !siret_valid(t->body)) {
        return tax_fails_check(t, err, "SIRET");
    }
    if (!luhn_valid(siren, 9)) {
        return tax_fails_check(t, err, "SIREN");
    }
    return tax_emit(t->out, AM_TAX_FR_SIREN, "FR-SIREN", siren, 9, false);
}

static am_status tax_vat(const tax_reading *t, const char *cc, am_error *err)
{
    const struct eu_vat *vat = find_eu_vat(cc);
    char s[TAX_ID_MAX], q[QUOTE_MAX + 4], scheme[8];
    bool person = false;
    size_t i;
    id_check verdict;

    if (!vat || !vat->check) {
        return AM_OK;
    }
    for (i = 0; i < t->n; i++) {
        unsigned char c = (unsigned char)t->body[i];

        if (!is_ascii_alpha(c) && !is_ascii_digit(c)) {
            break;
        }
        s[i] = (char)(c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c);
    }
    verdict = i < t->n || t->too_long ? ID_BAD_FORM : vat->check(s, t->n, &person);
    if (verdict == ID_BAD_FORM) {
        return am_error_set(err, AM_EINPUT, "tax id \"%s\" is not a %s VAT number (%s)",
                            quote(q, t->in, t->len), vat->cc, vat->form);
    }
    if (verdict == ID_BAD_CHECK) {
        memcpy(scheme, vat->cc, 2);
        memcpy(scheme + 2, " VAT", 5);
        return tax_fails_check(t, err, scheme);
    }
    for (i = 0; i < t->n && s[i] == '0'; i++) {
    }
    if (i == t->n) {
        return tax_fail(t, err, "is a placeholder, not a tax id");
    }
    tax_emit(t->out, AM_TAX_EU_VAT, "VAT-", vat->cc, 2, person);
    memcpy(t->out->value + t->out->len, s, t->n);
    t->out->len += t->n;
    t->out->value[t->out->len] = '\0';
    return AM_OK;
}

static am_status tax_duns(const tax_reading *t, am_error *err)
{
    char padded[9];
    am_status rc = tax_check_digits(t, err, "a DUNS number has 9");

    if (rc) {
        return rc;
    }
    if (t->too_long || t->n < 7 || t->n > 9) {
        return tax_wrong_length(t, err, "a DUNS number has 9");
    }
    memset(padded, '0', sizeof(padded));
    memcpy(padded + 9 - t->n, t->body, t->n);
    return tax_emit(t->out, AM_TAX_DUNS, "DUNS", padded, 9, false);
}

static bool country_is(const char *c, const char *code)
{
    return c[0] == code[0] && c[0] && c[1] == code[1] && c[2] == '\0';
}

/* Which scheme reads the id; see the comment at the top of this section. */
static tax_route tax_route_of(const tax_reading *t)
{
    const char *c = t->cc[0] ? t->cc : t->country;
    bool plain_digits = all_digits(t->body, t->n);

    switch (t->hint) {
    case HINT_INN:
    case HINT_OGRN:
    case HINT_OGRNIP:
        return ROUTE_RU;
    case HINT_BIN:
        return ROUTE_KZ;
    case HINT_UNP:
        return ROUTE_BY;
    case HINT_DUNS:
        return ROUTE_DUNS;
    case HINT_FR:
        return ROUTE_FR;
    case HINT_VAT:
        return country_is(c, "FR") ? ROUTE_FR : find_eu_vat(c) && c[0] ? ROUTE_VAT : ROUTE_NONE;
    case HINT_KPP:
    case HINT_NONE:
        break;
    }
    if (!c[0]) {
        /* No country: the D-U-N-S form is a DUNS, anything else is read as Russian. */
        return t->n == 9 && plain_digits && t->dashes == ((1u << 2) | (1u << 5)) ? ROUTE_DUNS
                                                                                 : ROUTE_RU;
    }
    if (country_is(c, "RU")) {
        return ROUTE_RU;
    }
    if (country_is(c, "KZ")) {
        return ROUTE_KZ;
    }
    if (country_is(c, "BY")) {
        return ROUTE_BY;
    }
    if (country_is(c, "FR")) {
        return ROUTE_FR;
    }
    if (t->cc[0]) {
        return find_eu_vat(c) ? ROUTE_VAT : ROUTE_NONE;
    }
    if (t->n == 9 && plain_digits && t->dashes == ((1u << 2) | (1u << 5))) {
        return ROUTE_DUNS;
    }
    if ((country_is(c, "US") || country_is(c, "GB") || country_is(c, "CA") ||
         country_is(c, "AU")) &&
        plain_digits && t->n >= 7 && t->n <= 9 && t->dashes != (1u << 2)) {
        return ROUTE_DUNS;
    }
    return ROUTE_NONE;
}

am_status am_normalize_tax_id(am_tax_id *out, am_normalizer *n, const char *in, size_t len,
                              const char *country, am_error *err)
{
    am_status rc = AM_OK;
    tax_reading t;
    char id[TAX_ID_MAX];
    const char *p = in, *e = in + len, *rest = NULL;
    size_t idlen = 0, skip;
    uint64_t dash_bits = 0;
    tax_route route;

    AM_ASSERT(out && n && (in || len == 0) && country, err);
    memset(&t, 0, sizeof(t));
    out->value[0] = '\0';
    out->len = 0;
    out->scheme = AM_TAX_NONE;
    out->person = false;
    out->zero_restored = false;
    t.out = out;
    t.in = in;
    t.len = len;
    t.country = country;

    trim_blanks(&p, &e);
    p = skip_tax_labels(&t.hint, p, e);
    if (t.hint == HINT_KPP) {
        rc = tax_fail(&t, err, "is a KPP, which names a branch; give the company's INN");
        goto cleanup;
    }
    /* The id: blanks and dashes dropped, up to a "/", "\\" (1C), "," or ";" or the word KPP. */
    while (p < e) {
        skip = prefix_in(blanks, COUNT(blanks), p, e);
        if (!skip) {
            skip = prefix_in(dashes, COUNT(dashes), p, e);
            if (skip) {
                dash_bits |= (uint64_t)1 << idlen;
            }
        }
        if (skip) {
            p += skip;
            continue;
        }
        if (*p == '/' || *p == '\\' || *p == ',' || *p == ';' ||
            (idlen > 0 && is_ascii_digit((unsigned char)id[idlen - 1]) && is_kpp_word(p, e))) {
            rest = *p == '/' || *p == '\\' || *p == ',' || *p == ';' ? p + 1 : p;
            break;
        }
        if (idlen == sizeof(id)) {
            t.too_long = true;
            break;
        }
        id[idlen++] = *p++;
    }
    if (idlen == 0) {
        goto cleanup;
    }
    t.body = id;
    t.n = idlen;
    t.dashes = dash_bits;
    /* Two letters are a country prefix, but a labelled UNP may start with letters of its own. */
    if (idlen >= 2 && is_ascii_alpha((unsigned char)id[0]) &&
        is_ascii_alpha((unsigned char)id[1]) && (t.hint != HINT_UNP || ascii_ieq(id, 2, "by"))) {
        t.cc[0] = (char)(ascii_lower((unsigned char)id[0]) - ('a' - 'A'));
        t.cc[1] = (char)(ascii_lower((unsigned char)id[1]) - ('a' - 'A'));
        t.body += 2;
        t.n -= 2;
        t.dashes = 0;
    }
    route = tax_route_of(&t);
    /* A label names the scheme; a country prefix that says otherwise is a contradiction. */
    if (t.cc[0] && ((route == ROUTE_RU && !country_is(t.cc, "RU")) ||
                    (route == ROUTE_KZ && !country_is(t.cc, "KZ")) ||
                    (route == ROUTE_BY && !country_is(t.cc, "BY")) ||
                    (route == ROUTE_FR && !country_is(t.cc, "FR")) || route == ROUTE_DUNS)) {
        rc = tax_fail(&t, err, "has a label and a country prefix that disagree");
        goto cleanup;
    }
    if (route == ROUTE_NONE) {
        goto cleanup;
    }
    if (rest && route != ROUTE_RU) {
        rc = tax_fail(&t, err, "holds more than one value; give one id");
        goto cleanup;
    }
    switch (route) {
    case ROUTE_RU:
        rc = tax_ru(&t, err);
        break;
    case ROUTE_KZ:
        rc = tax_kz(&t, err);
        break;
    case ROUTE_BY:
        rc = tax_by(&t, err);
        break;
    case ROUTE_FR:
        rc = tax_fr(&t, err);
        break;
    case ROUTE_VAT:
        rc = tax_vat(&t, t.cc[0] ? t.cc : country, err);
        break;
    case ROUTE_DUNS:
        rc = tax_duns(&t, err);
        break;
    case ROUTE_NONE:
        break;
    }
    if (rc == AM_OK && rest &&
        (out->scheme != AM_TAX_RU_INN || out->person || !kpp_valid(rest, e))) {
        rc = tax_fail(&t, err, "is not an INN and its KPP; give the 10-digit INN");
    }
cleanup:
    if (rc) {
        out->value[0] = '\0';
        out->len = 0;
        out->scheme = AM_TAX_NONE;
        out->person = false;
        out->zero_restored = false;
    }
    return rc;
}
