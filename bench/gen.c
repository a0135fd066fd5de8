/*
 * gen: seeded generator of large CSV exports for the benchmark. Writes the
 * vendor's file, one file per partner and an acctmap.json naming them, all
 * drawn from one synthetic universe of companies so that the files overlap
 * the way real CRM exports do. Standalone: it needs nothing from libacctmap.
 *
 *   gen -o DIR -p PARTNERS -r PARTNER_ROWS -v VENDOR_ROWS -s SEED [-u UNIVERSE]
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OUT_CAP (8u << 20)    /* bytes buffered per fwrite */
#define ROW_MAX 2048          /* no row is longer; checked before each row */
#define PARTNERS_MAX 999      /* file names p001 .. p999 */
#define ROWS_MAX 100000000ull /* per file: ids and the universe stay in uint32_t */
#define TEXT_MAX 256          /* a name or a website */
#define SYLLABLES 48          /* 12 consonants x 4 vowels */

/* ---- random numbers ------------------------------------------------------------ */

/* splitmix64's finalizer: a good 64-bit mix, used to hash a company from its index. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* xoshiro256**: the per-file row stream. */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(rng *r, uint64_t seed)
{
    size_t i;

    for (i = 0; i < 4; i++) {
        seed = mix64(seed);
        r->s[i] = seed;
    }
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Nearly uniform in [0, n) for n <= 2^32: multiply-shift, bias at most n / 2^32. */
static uint32_t rng_below(rng *r, uint64_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * n) >> 32);
}

static bool rng_percent(rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

/* ---- output buffer --------------------------------------------------------------- */

typedef struct outbuf {
    FILE *f;
    char *buf;
    size_t len;
    uint64_t total;
    bool failed; /* a write failed; errno was saved in `error` */
    int error;
} outbuf;

static void out_flush(outbuf *o)
{
    if (!o->failed && o->len && fwrite(o->buf, 1, o->len, o->f) != o->len) {
        o->failed = true;
        o->error = errno;
    }
    o->total += o->len;
    o->len = 0;
}

/* Make room for one more row; the writers below trust that ROW_MAX bytes are free. */
static void out_reserve_row(outbuf *o)
{
    if (OUT_CAP - o->len < ROW_MAX) {
        out_flush(o);
    }
}

static void put(outbuf *o, const char *s, size_t n)
{
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_str(outbuf *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_char(outbuf *o, char c)
{
    o->buf[o->len++] = c;
}

static void put_u64(outbuf *o, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width) {
        tmp[n++] = '0';
    }
    while (n) {
        o->buf[o->len++] = tmp[--n];
    }
}

/* A CSV field (RFC 4180): quoted, with quotes doubled, when it holds , ; " or a line break. */
static void put_field(outbuf *o, const char *s, size_t n)
{
    size_t i;

    if (!memchr(s, ',', n) && !memchr(s, ';', n) && !memchr(s, '"', n) && !memchr(s, '\n', n)) {
        put(o, s, n);
        return;
    }
    put_char(o, '"');
    for (i = 0; i < n; i++) {
        if (s[i] == '"') {
            put_char(o, '"');
        }
        put_char(o, s[i]);
    }
    put_char(o, '"');
}

/* ---- text builder for names and websites ----------------------------------------- */

typedef struct text {
    char s[TEXT_MAX];
    size_t len;
} text;

static void text_add(text *t, const char *s)
{
    size_t n = strlen(s);

    if (n > TEXT_MAX - 1 - t->len) {
        n = TEXT_MAX - 1 - t->len; /* never reached with our tables; keeps the bound */
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_upper_ascii(text *t)
{
    size_t i;

    for (i = 0; i < t->len; i++) {
        if (t->s[i] >= 'a' && t->s[i] <= 'z') {
            t->s[i] = (char)(t->s[i] - 'a' + 'A');
        }
    }
}

/* ---- the universe ------------------------------------------------------------------- */

static const char *const cons_lat[12] = {"b", "d", "g", "k", "l", "m",
                                         "n", "p", "r", "s", "t", "v"};
static const char *const cons_lat_up[12] = {"B", "D", "G", "K", "L", "M",
                                            "N", "P", "R", "S", "T", "V"};
static const char *const cons_cyr[12] = {"б", "д", "г", "к", "л", "м",
                                         "н", "п", "р", "с", "т", "в"};
static const char *const cons_cyr_up[12] = {"Б", "Д", "Г", "К", "Л", "М",
                                            "Н", "П", "Р", "С", "Т", "В"};
static const char *const vow_lat[4] = {"a", "e", "i", "o"};
static const char *const vow_cyr[4] = {"а", "е", "и", "о"};

/* Second words, with the Latin form the domain uses for the Cyrillic ones. */
static const char *const words_lat[16] = {"Systems",  "Logistics",  "Foods",    "Energy",
                                          "Software", "Analytics",  "Retail",   "Labs",
                                          "Capital",  "Media",      "Health",   "Robotics",
                                          "Textiles", "Consulting", "Networks", "Solutions"};
static const char *const words_lat_lower[16] = {"systems",  "logistics",  "foods",    "energy",
                                                "software", "analytics",  "retail",   "labs",
                                                "capital",  "media",      "health",   "robotics",
                                                "textiles", "consulting", "networks", "solutions"};
static const char *const words_cyr[16] = {
    "Строй",  "Сервис",  "Торг",    "Инвест", "Логистик", "Софт", "Трейд", "Агро",
    "Энерго", "Консалт", "Телеком", "Проект", "Маркет",   "Фарм", "Авто",  "Мед"};
static const char *const words_cyr_lat[16] = {
    "stroy",  "servis",  "torg",    "invest", "logistik", "soft", "treyd", "agro",
    "energo", "konsalt", "telekom", "proekt", "market",   "farm", "avto",  "med"};
static const char *const words_cyr_lower[16] = {
    "строй",  "сервис",  "торг",    "инвест", "логистик", "софт", "трейд", "агро",
    "энерго", "консалт", "телеком", "проект", "маркет",   "фарм", "авто",  "мед"};

static const char *const freemail[6] = {"gmail.com",   "mail.ru", "yandex.ru",
                                        "outlook.com", "bk.ru",   "hotmail.com"};
static const char *const owners[8] = {"Alice Chen",   "Dmitry Orlov", "Maria Sokolova",
                                      "James Carter", "Lena Fischer", "Анна Смирнова",
                                      "Игорь Волков", "Raj Patel"};

typedef struct country_info {
    const char *code;
    const char *name;         /* as some CRMs write it */
    unsigned weight;          /* share of the universe, in percent */
    unsigned cyrillic;        /* percent of names written in Cyrillic */
    const char *const *forms; /* legal forms, the first the most common */
    size_t form_count;
    const char *const *tlds;
    size_t tld_count;
    const char *const *cities;
    size_t city_count;
} country_info;

static const char *const forms_ru[] = {"ООО", "ООО", "ООО", "ООО", "АО", "ПАО"};
static const char *const forms_kz[] = {"ТОО", "ТОО", "АО"};
static const char *const forms_us[] = {"Inc.", "Inc.", "LLC", "Corp.", "Corporation"};
static const char *const forms_de[] = {"GmbH", "GmbH", "GmbH", "AG"};
static const char *const forms_gb[] = {"Ltd", "Ltd", "Limited", "PLC", "LLP"};
static const char *const forms_fr[] = {"SAS", "SARL", "SA"};
static const char *const forms_nl[] = {"BV", "BV", "NV"};
static const char *const tlds_ru[] = {"ru", "ru", "ru", "ru", "com"};
static const char *const tlds_kz[] = {"kz", "kz", "com"};
static const char *const tlds_us[] = {"com", "com", "com", "io", "net"};
static const char *const tlds_de[] = {"de", "de", "com"};
static const char *const tlds_gb[] = {"co.uk", "co.uk", "com"};
static const char *const tlds_fr[] = {"fr", "fr", "com"};
static const char *const tlds_nl[] = {"nl", "nl", "com"};
static const char *const cities_ru[] = {"Москва",       "Санкт-Петербург", "Казань", "Новосибирск",
                                        "Екатеринбург", "г. Москва",       "Самара"};
static const char *const cities_kz[] = {"Алматы", "Астана", "Шымкент"};
static const char *const cities_us[] = {"New York", "San Francisco", "Austin", "Chicago"};
static const char *const cities_de[] = {"Berlin", "München", "Hamburg", "Köln"};
static const char *const cities_gb[] = {"London", "Manchester", "Leeds", "Bristol"};
static const char *const cities_fr[] = {"Paris", "Lyon", "Toulouse"};
static const char *const cities_nl[] = {"Amsterdam", "Rotterdam", "Utrecht"};

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define COUNTRY(code, name, w, cyr, f, t, c)                                                       \
    {                                                                                              \
        code, name, w, cyr, f, N(f), t, N(t), c, N(c)                                              \
    }

static const country_info countries[] = {
    COUNTRY("RU", "Russia", 45, 85, forms_ru, tlds_ru, cities_ru),
    COUNTRY("KZ", "Kazakhstan", 5, 70, forms_kz, tlds_kz, cities_kz),
    COUNTRY("US", "United States", 20, 0, forms_us, tlds_us, cities_us),
    COUNTRY("DE", "Germany", 12, 0, forms_de, tlds_de, cities_de),
    COUNTRY("GB", "United Kingdom", 12, 0, forms_gb, tlds_gb, cities_gb),
    COUNTRY("FR", "France", 3, 0, forms_fr, tlds_fr, cities_fr),
    COUNTRY("NL", "Netherlands", 3, 0, forms_nl, tlds_nl, cities_nl),
};
static const country_info *const russia = &countries[0];

/*
 * The universe's parameters. Company c's name is c written in base 48 with
 * one syllable per digit, each digit put through a seeded bijection that
 * also depends on the syllable before it: every company has its own name and
 * domain, so files overlap only where they draw the same company.
 */
typedef struct universe {
    uint64_t seed;
    uint32_t size;
    unsigned syllables; /* digits of size-1 in base 48, at least 3 */
    unsigned mult[8];   /* odd and not a multiple of 3: invertible mod 48 */
    unsigned add[8];
} universe;

static void universe_init(universe *u, uint64_t seed, uint32_t size)
{
    static const unsigned units[8] = {5, 7, 11, 13, 17, 19, 23, 25};
    uint64_t span = SYLLABLES * SYLLABLES * SYLLABLES;
    unsigned k;

    u->seed = seed;
    u->size = size;
    u->syllables = 3;
    while (span < size) {
        span *= SYLLABLES;
        u->syllables++;
    }
    for (k = 0; k < 8; k++) {
        uint64_t h = mix64(seed ^ (0xA5A5ull + k));
        u->mult[k] = units[h % 8];
        u->add[k] = (unsigned)((h >> 8) % SYLLABLES);
    }
}

typedef struct company {
    const country_info *country;
    bool cyrillic;
    bool has_word;
    bool word_in_domain;
    bool hyphen;
    bool idn; /* a Cyrillic .рф domain */
    bool has_site;
    bool person; /* a Russian sole trader (ИП): 12-digit INN, no other legal form */
    unsigned word;
    unsigned form;
    unsigned tld;
    char inn[13]; /* "" when none */
    unsigned char syl[8];
} company;

static void inn_check(char *digits, size_t n)
{
    static const unsigned w10[9] = {2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const unsigned w11[10] = {7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const unsigned w12[11] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    const unsigned *w = n == 9 ? w10 : (n == 10 ? w11 : w12);
    unsigned sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        sum += (unsigned)(digits[i] - '0') * w[i];
    }
    digits[n] = (char)('0' + sum % 11 % 10);
}

/* A valid INN made from c: unique in the universe because (c * 7919) mod 10^k is a bijection. */
static void make_inn(char *out, uint32_t c, bool person)
{
    static const char *const regions[8] = {"77", "78", "50", "52", "66", "16", "54", "23"};
    uint64_t body = person ? ((uint64_t)c * 7919u + 1234567u) % 100000000u
                           : ((uint64_t)c * 7919u + 123457u) % 10000000u;
    int digits = person ? 8 : 7;
    int i;

    memcpy(out, regions[c % 8], 2);
    for (i = digits + 1; i >= 2; i--) {
        out[i] = (char)('0' + body % 10);
        body /= 10;
    }
    if (person) {
        inn_check(out, 10);
        inn_check(out, 11);
        out[12] = '\0';
    } else {
        inn_check(out, 9);
        out[10] = '\0';
    }
}

static void company_make(company *co, const universe *u, uint32_t c)
{
    uint64_t h = mix64(u->seed ^ ((uint64_t)c * 0xD1B54A32D192ED03ull));
    uint64_t h2 = mix64(h);
    unsigned pick = (unsigned)(h % 100), acc = 0, k, prev = 0;
    uint32_t rest = c;
    size_t i;

    co->country = &countries[0];
    for (i = 0; i < N(countries); i++) {
        acc += countries[i].weight;
        if (pick < acc) {
            co->country = &countries[i];
            break;
        }
    }
    co->cyrillic = (h >> 8) % 100 < co->country->cyrillic;
    co->has_word = (h >> 16) % 100 < 60;
    co->word_in_domain = (h >> 24) % 2;
    co->hyphen = (h >> 25) % 2;
    co->word = (unsigned)((h >> 26) % 16);
    co->form = (unsigned)((h >> 30) % co->country->form_count);
    co->tld = (unsigned)((h >> 34) % co->country->tld_count);
    co->idn = co->cyrillic && co->country == russia && (h >> 40) % 100 < 6;
    co->has_site = (h >> 48) % 100 < 90;
    co->person = co->country == russia && (h2 >> 8) % 100 < 5;
    co->inn[0] = '\0';
    if (co->country == russia && h2 % 100 < 85) {
        make_inn(co->inn, c, co->person);
    }
    for (k = 0; k < u->syllables; k++) {
        unsigned d = rest % SYLLABLES;
        rest /= SYLLABLES;
        prev = (d * u->mult[k] + u->add[k] + prev) % SYLLABLES;
        co->syl[k] = (unsigned char)prev;
    }
}

/* The core name in the company's own script: "Каремида Строй", "Karemida Systems". */
static void company_core(text *t, const company *co, const universe *u)
{
    unsigned k;

    for (k = 0; k < u->syllables; k++) {
        unsigned s = co->syl[k];
        if (co->cyrillic) {
            text_add(t, k == 0 ? cons_cyr_up[s / 4] : cons_cyr[s / 4]);
            text_add(t, vow_cyr[s % 4]);
        } else {
            text_add(t, k == 0 ? cons_lat_up[s / 4] : cons_lat[s / 4]);
            text_add(t, vow_lat[s % 4]);
        }
    }
    if (co->has_word) {
        text_add(t, " ");
        text_add(t, co->cyrillic ? words_cyr[co->word] : words_lat[co->word]);
    }
}

/* The registrable domain: "karemida-stroy.ru", "каремида.рф", "karemidasystems.co.uk". */
static void company_host(text *t, const company *co, const universe *u)
{
    unsigned k;

    for (k = 0; k < u->syllables; k++) {
        unsigned s = co->syl[k];
        text_add(t, co->idn ? cons_cyr[s / 4] : cons_lat[s / 4]);
        text_add(t, co->idn ? vow_cyr[s % 4] : vow_lat[s % 4]);
    }
    if (co->has_word && co->word_in_domain) {
        text_add(t, co->hyphen ? "-" : "");
        if (co->idn) {
            text_add(t, words_cyr_lower[co->word]);
        } else {
            text_add(t, co->cyrillic ? words_cyr_lat[co->word] : words_lat_lower[co->word]);
        }
    }
    text_add(t, ".");
    text_add(t, co->idn ? "рф" : co->country->tlds[co->tld]);
}

/* ---- one row --------------------------------------------------------------------------- */

typedef struct gen_file {
    const universe *u;
    rng r;
    outbuf out;
    uint64_t rows;
} gen_file;

static void row_name(text *t, const company *co, const universe *u, rng *r)
{
    const country_info *ci = co->country;
    const char *form = co->person ? "ИП" : ci->forms[co->form];
    text core = {{0}, 0};
    unsigned style = rng_below(r, 100);

    if (!co->person && rng_percent(r, 10)) {
        form = ci->forms[rng_below(r, ci->form_count)]; /* the legal form changed */
    }
    company_core(&core, co, u);
    if (ci->forms == forms_ru || ci->forms == forms_kz) {
        if (style < 35) {
            text_add(t, form);
            text_add(t, " «");
            text_add(t, core.s);
            text_add(t, "»");
        } else if (style < 50) {
            text_add(t, form);
            text_add(t, " \"");
            text_add(t, core.s);
            text_add(t, "\"");
        } else if (style < 65) {
            text_add(t, core.s);
            text_add(t, " ");
            text_add(t, form);
        } else if (style < 75 && strcmp(form, "ООО") == 0) {
            text_add(t, "Общество с ограниченной ответственностью «");
            text_add(t, core.s);
            text_add(t, "»");
        } else if (style < 85) {
            text_add(t, form);
            text_add(t, " ");
            text_add(t, core.s);
        } else {
            text_add(t, core.s);
        }
    } else {
        text_add(t, core.s);
        if (style < 55) {
            text_add(t, " ");
            text_add(t, form);
        } else if (style < 75) {
            text_add(t, ", ");
            text_add(t, form);
        }
        if (rng_percent(r, 4)) {
            text_upper_ascii(t);
        }
    }
}

static void row_website(text *t, const company *co, const universe *u, rng *r)
{
    text host = {{0}, 0};
    unsigned style;

    if (!co->has_site || rng_percent(r, 20)) {
        if (rng_percent(r, 25)) {
            /* Only an e-mail on a free-mail domain: never a match key. */
            company_host(&host, co, u);
            host.len = strcspn(host.s, ".");
            host.s[host.len] = '\0';
            text_add(t, co->idn ? "info" : host.s);
            text_add(t, "@");
            text_add(t, freemail[rng_below(r, N(freemail))]);
        }
        return;
    }
    company_host(&host, co, u);
    style = rng_below(r, 100);
    if (style < 20) {
        text_add(t, host.s);
    } else if (style < 35) {
        text_add(t, "www.");
        text_add(t, host.s);
    } else if (style < 50) {
        text_add(t, "https://www.");
        text_add(t, host.s);
        text_add(t, "/");
    } else if (style < 60) {
        text_add(t, "http://");
        text_add(t, host.s);
    } else if (style < 70) {
        text_add(t, "https://");
        text_add(t, host.s);
        text_add(t, "/contacts");
    } else if (style < 85) {
        text_add(t, rng_percent(r, 50) ? "info@" : "sales@");
        text_add(t, host.s);
    } else if (style < 92) {
        text_add(t, "http://shop.");
        text_add(t, host.s);
    } else {
        text_add(t, host.s);
        text_add(t, "/about");
    }
    if (!co->idn && rng_percent(r, 5)) {
        text_upper_ascii(t);
    }
}

static const char *row_status(rng *r)
{
    unsigned s = rng_below(r, 100);

    if (s < 30) {
        return "customer";
    }
    if (s < 75) {
        return "prospect";
    }
    if (s < 90) {
        return "opportunity";
    }
    return s < 95 ? "customer;opportunity" : "prospect;opportunity";
}

static void write_row(gen_file *g, const char *id_prefix, uint64_t n)
{
    const universe *u = g->u;
    outbuf *o = &g->out;
    rng *r = &g->r;
    company co;
    text name = {{0}, 0}, site = {{0}, 0};
    const char *status;
    unsigned pct;
    bool pipeline;

    company_make(&co, u, rng_below(r, u->size));
    row_name(&name, &co, u, r);
    row_website(&site, &co, u, r);
    status = row_status(r);
    pipeline = strcmp(status, "prospect") != 0;

    out_reserve_row(o);
    put_str(o, id_prefix);
    put_u64(o, n, 7);
    put_char(o, ',');
    put_field(o, name.s, name.len);
    put_char(o, ',');
    put_str(o, site.s); /* our websites never hold , ; or quotes */
    put_char(o, ',');
    if (co.inn[0] && rng_percent(r, 80)) {
        put_str(o, co.inn);
    }
    put_char(o, ',');
    pct = rng_below(r, 100);
    if (pct < 70) {
        put_str(o, co.country->code);
    } else if (pct < 95) {
        put_str(o, co.country->name);
    }
    put_char(o, ',');
    put_field(o, status, strlen(status));
    put_char(o, ',');
    if (rng_percent(r, 85)) {
        put_str(o, co.country->cities[rng_below(r, co.country->city_count)]);
    }
    put_char(o, ',');
    if (rng_percent(r, 70)) {
        put_str(o, owners[rng_below(r, N(owners))]);
    }
    put_char(o, ',');
    if (rng_percent(r, pipeline ? 60 : 10)) {
        put_u64(o, 1000 + (uint64_t)rng_below(r, 500000), 0);
    }
    put_char(o, '\n');
    g->rows++;
}

/* ---- files ------------------------------------------------------------------------------ */

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);

    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "gen: %s/%s: path too long\n", dir, name);
        return -1;
    }
    return 0;
}

/*
 * Write `rows` rows to DIR/NAME through a temporary name, so that a file that
 * exists is complete. Adds the bytes written to *bytes.
 */
static int write_org_file(const char *dir, const char *name, const char *id_prefix, uint64_t rows,
                          uint64_t stream, const universe *u, uint64_t *bytes)
{
    static const char header[] = "id,name,domain,tax_id,country,status,city,owner,amount\n";
    char path[4096], tmp[4096 + 8];
    gen_file g;
    uint64_t i;
    int rc = -1;

    tmp[0] = '\0';
    memset(&g, 0, sizeof(g));
    g.u = u;
    rng_seed(&g.r, u->seed ^ mix64(stream));
    if (path_join(path, sizeof(path), dir, name) != 0) {
        goto cleanup;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    g.out.buf = malloc(OUT_CAP);
    if (!g.out.buf) {
        fprintf(stderr, "gen: out of memory\n");
        goto cleanup;
    }
    g.out.f = fopen(tmp, "wb");
    if (!g.out.f) {
        fprintf(stderr, "gen: %s: cannot create: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    put(&g.out, header, sizeof(header) - 1);
    for (i = 1; i <= rows; i++) {
        write_row(&g, id_prefix, i);
    }
    out_flush(&g.out);
    if (fclose(g.out.f) != 0 && !g.out.failed) {
        g.out.failed = true;
        g.out.error = errno;
    }
    g.out.f = NULL;
    if (g.out.failed) {
        fprintf(stderr, "gen: %s: cannot write: %s\n", tmp, strerror(g.out.error));
        goto cleanup;
    }
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "gen: %s: cannot rename to %s: %s\n", tmp, path, strerror(errno));
        goto cleanup;
    }
    *bytes += g.out.total;
    rc = 0;
cleanup:
    if (g.out.f) {
        fclose(g.out.f);
    }
    if (rc != 0 && tmp[0]) {
        remove(tmp);
    }
    free(g.out.buf);
    return rc;
}

/* acctmap.json last: its presence says the data set is complete. */
static int write_config(const char *dir, unsigned partners)
{
    static const char share[] = "\"share\": {\"customers\": \"accounts\", \"prospects\": "
                                "\"counts\", \"opportunities\": \"none\"}";
    char path[4096], tmp[4096 + 8];
    FILE *f = NULL;
    unsigned p;
    int rc = -1;

    tmp[0] = '\0';
    if (path_join(path, sizeof(path), dir, "acctmap.json") != 0) {
        goto cleanup;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "gen: %s: cannot create: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    fprintf(f, "{\n  \"self\": \"acme\",\n  \"store\": \"dir:./acctmap-data\",\n  \"orgs\": [\n");
    fprintf(f, "    {\"id\": \"acme\", \"name\": \"Acme Cloud\", "
               "\"sources\": [{\"type\": \"csv\", \"path\": \"acme.csv\"}]}");
    for (p = 1; p <= partners; p++) {
        fprintf(f,
                ",\n    {\"id\": \"p%03u\", \"name\": \"Partner %03u\", "
                "\"sources\": [{\"type\": \"csv\", \"path\": \"p%03u.csv\"}], %s}",
                p, p, p, share);
    }
    fprintf(f, "\n  ]\n}\n");
    if (ferror(f)) {
        fprintf(stderr, "gen: %s: cannot write\n", tmp);
        goto cleanup;
    }
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "gen: %s: cannot write: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "gen: %s: cannot rename: %s\n", tmp, strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    if (f) {
        fclose(f);
    }
    if (rc != 0 && tmp[0]) {
        remove(tmp);
    }
    return rc;
}

/* mkdir -p: each missing component of `dir`. */
static int make_dirs(const char *dir)
{
    char path[4096];
    size_t len = strlen(dir), i;

    if (len == 0 || len >= sizeof(path)) {
        fprintf(stderr, "gen: -o: bad directory name\n");
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') {
            continue;
        }
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "gen: %s: cannot create directory: %s\n", path, strerror(errno));
            return -1;
        }
        path[i] = dir[i];
    }
    return 0;
}

static int parse_count(uint64_t *out, const char *opt, const char *s, uint64_t min, uint64_t max)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v < min || v > max) {
        fprintf(stderr, "gen: -%s: \"%s\" is not a number from %" PRIu64 " to %" PRIu64 "\n", opt,
                s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gen -o DIR -p PARTNERS -r PARTNER_ROWS -v VENDOR_ROWS -s SEED "
               "[-u UNIVERSE]\n"
               "Writes DIR/acme.csv, DIR/p001.csv ... and DIR/acctmap.json. The universe of\n"
               "companies the rows are drawn from defaults to 3 x VENDOR_ROWS.\n");
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    uint64_t partners = 10, partner_rows = 20000, vendor_rows = 100000, seed = 1, size = 0;
    uint64_t bytes = 0, rows = 0, p;
    universe u;
    double t0, secs;
    char name[32], prefix[32];
    int opt;

    while ((opt = getopt(argc, argv, "o:p:r:v:s:u:h")) != -1) {
        int bad = 0;
        switch (opt) {
        case 'o':
            dir = optarg;
            break;
        case 'p':
            bad = parse_count(&partners, "p", optarg, 1, PARTNERS_MAX);
            break;
        case 'r':
            bad = parse_count(&partner_rows, "r", optarg, 1, ROWS_MAX);
            break;
        case 'v':
            bad = parse_count(&vendor_rows, "v", optarg, 1, ROWS_MAX);
            break;
        case 's':
            bad = parse_count(&seed, "s", optarg, 0, UINT64_MAX);
            break;
        case 'u':
            bad = parse_count(&size, "u", optarg, 1, UINT32_MAX);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            return 2;
        }
    }
    if (!dir || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (size == 0) {
        size = vendor_rows * 3;
    }
    if (make_dirs(dir) != 0) {
        return 1;
    }
    universe_init(&u, seed, (uint32_t)size);

    t0 = now_seconds();
    if (write_org_file(dir, "acme.csv", "A", vendor_rows, 0, &u, &bytes) != 0) {
        return 1;
    }
    rows += vendor_rows;
    for (p = 1; p <= partners; p++) {
        snprintf(name, sizeof(name), "p%03u.csv", (unsigned)p);
        snprintf(prefix, sizeof(prefix), "P%03u-", (unsigned)p);
        if (write_org_file(dir, name, prefix, partner_rows, p, &u, &bytes) != 0) {
            return 1;
        }
        rows += partner_rows;
    }
    if (write_config(dir, (unsigned)partners) != 0) {
        return 1;
    }
    secs = now_seconds() - t0;
    printf("gen: %s: acme.csv (%" PRIu64 " rows) + %" PRIu64 " partner files (%" PRIu64
           " rows each) + acctmap.json\n",
           dir, vendor_rows, partners, partner_rows);
    printf("gen: %" PRIu64 " rows, %.1f MB in %.2f s (%.0f MB/s), universe %" PRIu64
           " companies, seed %" PRIu64 "\n",
           rows, (double)bytes / 1e6, secs, secs > 0 ? (double)bytes / 1e6 / secs : 0.0, size,
           seed);
    return 0;
}
