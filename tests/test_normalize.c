/*
 * Normalize: the examples of the design, the traps of the CRM fixtures
 * (../shared/fixtures-crm/README.md), bad bytes and over-long input. Every case runs on
 * guarded input, so reading one byte past `len` crashes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "acctmap.h"
#include "helpers.h"

typedef am_status (*normalize_fn)(char *out, size_t cap, size_t *len_out, am_normalizer *n,
                                  const char *in, size_t len, am_error *err);

/*
 * One input and what it gives: for AM_OK the value (length 0 when ""), for AM_EINPUT the
 * message. `len` is for inputs with a NUL inside; 0 means strlen(in).
 */
typedef struct norm_case {
    const char *in;
    am_status rc;
    const char *want;
    size_t len;
} norm_case;

#define OK(in, want)                                                                               \
    {                                                                                              \
        (in), AM_OK, (want), 0                                                                     \
    }
#define BAD(in, msg)                                                                               \
    {                                                                                              \
        (in), AM_EINPUT, (msg), 0                                                                  \
    }
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static am_normalizer *norm;

static int setup(void **state)
{
    am_error err = {0};

    (void)state;
    return am_normalizer_new(&norm, &err) == AM_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    am_normalizer_free(norm);
    norm = NULL;
    return 0;
}

/* Whether `s` (`len` bytes) is valid UTF-8 with no control character. */
static bool printable_utf8(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;

        if (n == 0 || i + n > len || (n == 1 && (c < 0x20 || c == 0x7F))) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) {
                return false;
            }
        }
        i += n;
    }
    return true;
}

/*
 * Run `fn` on a guarded copy of `in` and check the result. Also checks what every result
 * must satisfy: NUL-terminated at *len_out, under AM_NORM_MAX, valid UTF-8, and a message on
 * one valid UTF-8 line.
 */
static void check_one(normalize_fn fn, const char *what, const char *in, size_t len,
                      am_status want_rc, const char *want)
{
    char out[AM_NORM_MAX];
    size_t out_len = 12345;
    am_error err = {0};
    const char *g = am_test_guarded(in, len);
    am_status rc = fn(out, sizeof(out), &out_len, norm, g, len, &err);

    am_test_guarded_free(g);
    if (rc != want_rc) {
        fail_msg("%s(\"%.*s\"): %s (%s), want %s", what, (int)len, in, am_status_name(rc), err.msg,
                 am_status_name(want_rc));
    }
    if (rc == AM_OK) {
        if (out_len != strlen(out) || out_len >= AM_NORM_MAX) {
            fail_msg("%s(\"%.*s\"): length %zu for \"%s\"", what, (int)len, in, out_len, out);
        }
        if (!printable_utf8(out, out_len)) {
            fail_msg("%s(\"%.*s\"): output is not printable UTF-8", what, (int)len, in);
        }
        if (want && strcmp(out, want) != 0) {
            fail_msg("%s(\"%.*s\"): \"%s\", want \"%s\"", what, (int)len, in, out, want);
        }
    } else {
        if (!printable_utf8(err.msg, strlen(err.msg))) {
            fail_msg("%s(\"%.*s\"): message is not printable UTF-8", what, (int)len, in);
        }
        if (want && strcmp(err.msg, want) != 0) {
            fail_msg("%s(\"%.*s\"): message \"%s\", want \"%s\"", what, (int)len, in, err.msg,
                     want);
        }
    }
}

static void check_cases(normalize_fn fn, const char *what, const norm_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const norm_case *c = &cases[i];
        check_one(fn, what, c->in, c->len ? c->len : strlen(c->in), c->rc, c->want);
    }
}

#define ROMASHKA_PLUS "xn----7sba3bhbnncs5exd.xn--p1ai"

static void test_normalize__domain_registrable(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("https://www.Acme.com:443/path?x", "acme.com"),
        OK("acme.com", "acme.com"),
        OK("acme.com.", "acme.com"),
        OK("user@acme.com", "acme.com"),
        OK("mailto:user@acme.com", "acme.com"),
        OK("MAILTO:user@acme.com?subject=hello", "acme.com"),
        OK("https://user:secret@acme.com:8443/x", "acme.com"),
        OK("//acme.com/x", "acme.com"),
        OK("http:acme.com", "acme.com"),
        OK("https:\\\\acme.com\\x", "acme.com"),
        OK("acme.com#top", "acme.com"),
        OK("acme.com:8080", "acme.com"),
        OK("ACME.COM", "acme.com"),
        OK("  acme.com  ", "acme.com"),
        OK("\xC2\xA0" "acme.com\t\r\n", "acme.com"),
        OK("\xEF\xBB\xBF" "acme.com", "acme.com"),
        OK("acme.com,", "acme.com"),
        OK("acme.com;", "acme.com"),
        OK("(acme.com).", "acme.com"),
        OK("<https://acme.com/>", "acme.com"),
        OK("\"acme.com\"", "acme.com"),
        /* the fixtures */
        OK("https://www.northwindtraders.com/", "northwindtraders.com"),
        OK("northwindtraders.com", "northwindtraders.com"),
        OK("globex-logistics.de", "globex-logistics.de"),
        OK("http://shop.initech-solutions.co.uk/catalog", "initech-solutions.co.uk"),
        OK("shop.initech-solutions.co.uk", "initech-solutions.co.uk"),
        OK("https://stark-mfg.com.au/en/", "stark-mfg.com.au"),
        OK("https://romashka.ru", "romashka.ru"),
        OK("https://www.romashka.ru/", "romashka.ru"),
        OK("https://www.romashka.ru/moscow/", "romashka.ru"),
        OK("http://www.severstal-service.ru", "severstal-service.ru"),
        OK("https://severstal-service.com", "severstal-service.com"),
        OK("ALTYNDALA.KZ", "altyndala.kz"),
        OK("WWW.ACMEROBOTICS.IO", "acmerobotics.io"),
        OK("https://www.acme-trading.com", "acme-trading.com"),
        OK(" stroymontazh.ru ", "stroymontazh.ru"),
        OK("HTTPS://MERIDIAN-GROUP.RU", "meridian-group.ru"),
        OK("HTTPS://WWW.HOOLI.FR", "hooli.fr"),
        OK("http://www.vector-spb.ru/index.php?route=common/home", "vector-spb.ru"),
        OK("vector-spb.ru/index.php", "vector-spb.ru"),
        /* private section of the public suffix list: each subdomain is a site */
        OK("foo.github.io", "foo.github.io"),
        OK("https://www.foo.github.io/", "foo.github.io"),
        /* a free-mail name inside a longer label is not free mail */
        OK("notgmail.com", "notgmail.com"),
        OK("gmail.com.au", "gmail.com.au"),
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
}

static void test_normalize__domain_idn(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("ромашка-плюс.рф", ROMASHKA_PLUS),
        OK("https://ромашка-плюс.рф/", ROMASHKA_PLUS),
        OK("https://www.ромашка-плюс.рф/о-нас", ROMASHKA_PLUS),
        OK("РОМАШКА-ПЛЮС.РФ", ROMASHKA_PLUS),
        OK(ROMASHKA_PLUS, ROMASHKA_PLUS),
        OK("XN----7SBA3BHBNNCS5EXD.XN--P1AI", ROMASHKA_PLUS),
        OK("info@" ROMASHKA_PLUS, ROMASHKA_PLUS),
        OK("ＡＣＭＥ．ｃｏｍ", "acme.com"), /* full-width, mapped by UTS #46 */
        OK("straße.de", "xn--strae-oqa.de"),    /* non-transitional: ß stays */
        BAD("xn--zzzz.com", "\"xn--zzzz.com\" is not a domain"),
        BAD("acme\xFF.com", "\"acme?.com\" is not a domain"),
        BAD("\xD1\x80\xD0.рф", "\"р?.рф\" is not a domain"),
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
}

/* Free mail, social networks and site builders are no key; not an error either. */
static void test_normalize__domain_free_mail_and_social(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("gmail.com", ""),
        OK("petrova.atelier@gmail.com", ""),
        OK("mailto:Petrova.Atelier@GMAIL.COM", ""),
        OK("mail.ru", ""),
        OK("ivanov@e.mail.ru", ""),
        OK("yandex.ru", ""),
        OK("bk.ru", ""),
        OK("list.ru", ""),
        OK("inbox.ru", ""),
        OK("outlook.com", ""),
        OK("hotmail.com", ""),
        OK("yahoo.com", ""),
        OK("icloud.com", ""),
        OK("https://vk.com/club123", ""),
        OK("https://www.facebook.com/acme", ""),
        OK("https://t.me/acme", ""),
        OK("https://www.instagram.com/atelier.petrova/", ""),
        OK("https://www.linkedin.com/company/acme", ""),
        OK("https://acme.tilda.ws/", ""),
        OK("https://acme.wixsite.com/site", ""),
        OK("wixsite.com", ""), /* a public suffix, but listed: no key rather than an error */
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
}

static void test_normalize__domain_refused(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("", ""),
        OK("   ", ""),
        OK("\t\r\n", ""),
        BAD("acme..com", "\"acme..com\" is not a domain"),
        BAD("acme com", "\"acme com\" is not a domain"),
        BAD(" acme com ", "\"acme com\" is not a domain"),
        BAD("acme.com, acme.ru", "\"acme.com, acme.ru\" is not a domain"),
        BAD("acme_x.com", "\"acme_x.com\" is not a domain"),
        BAD("-acme.com", "\"-acme.com\" is not a domain"),
        BAD("acme-.com", "\"acme-.com\" is not a domain"),
        BAD("acme.com:abc", "\"acme.com:abc\" is not a domain"),
        BAD(".com", "\".com\" is not a domain"),
        BAD("https://", "\"https://\" is not a domain"),
        BAD("user@", "\"user@\" is not a domain"),
        BAD("n/a", "\"n/a\" is not a domain"),
        BAD("192.168.0.1", "\"192.168.0.1\" is an IP address, not a domain"),
        BAD("http://10.0.0.1:8080/admin", "\"http://10.0.0.1:8080/admin\" is an IP address, not a "
                                          "domain"),
        BAD("http://[::1]/", "\"http://[::1]/\" is an IP address, not a domain"),
        BAD("2001:db8::1", "\"2001:db8::1\" is an IP address, not a domain"),
        BAD("acme.123", "\"acme.123\" is not a domain"),
        BAD("localhost", "\"localhost\" is not a domain"),
        BAD("http://localhost:3000/", "\"http://localhost:3000/\" is not a domain"),
        BAD("co.uk", "\"co.uk\" is a public suffix, not a domain"),
        BAD("github.io", "\"github.io\" is a public suffix, not a domain"),
        BAD("acme.cmo", "\"acme.cmo\" is not a domain (unknown top-level domain)"),
        BAD("intranet.local", "\"intranet.local\" is not a domain (unknown top-level domain)"),
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
}

/* Verdicts on top-level domains are cached: asking again, in any order, gives the same answers. */
static void test_normalize__domain_tld_verdicts_repeat(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("acme.com", "acme.com"),
        BAD("acme.cmo", "\"acme.cmo\" is not a domain (unknown top-level domain)"),
        OK("acme.co.uk", "acme.co.uk"),
        BAD("intranet.local", "\"intranet.local\" is not a domain (unknown top-level domain)"),
        OK("ромашка.рф", "xn--80aa3agjl3d.xn--p1ai"),
        OK("acme.international", "acme.international"),
        BAD("acme.internationalx", "\"acme.internationalx\" is not a domain (unknown top-level "
                                   "domain)"),
        OK("acme.ru", "acme.ru"),
    };
    /* clang-format on */

    (void)state;
    for (int round = 0; round < 3; round++) {
        check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
    }
}

static void test_normalize__domain_too_long(void **state)
{
    char in[2048], want[128];
    size_t i;

    (void)state;
    /* A label of 64 characters. */
    memset(in, 'a', 64);
    memcpy(in + 64, ".com", 5);
    check_one(am_normalize_domain, "domain", in, strlen(in), AM_EINPUT, NULL);
    /* 63 is fine. */
    memcpy(in + 63, ".com", 5);
    check_one(am_normalize_domain, "domain", in, strlen(in), AM_OK, in);
    /* A host of 300 characters: the message quotes 60 bytes and says it cut. */
    for (i = 0; i < 300; i += 10) {
        memcpy(in + i, "abcdefghi.", 10);
    }
    memcpy(in + 300, "com", 4);
    snprintf(want, sizeof(want), "\"%.60s...\" is not a domain", in);
    check_one(am_normalize_domain, "domain", in, strlen(in), AM_EINPUT, want);
    /* Cyrillic cut in the quote stays whole characters: 2-byte letters, 60 bytes = 30. */
    for (i = 0; i < 1200; i += 2) {
        memcpy(in + i, "\xD0\xB0", 2);
    }
    memcpy(in + 1200, ".рф", sizeof(".рф"));
    snprintf(want, sizeof(want), "\"%.60s...\" is not a domain", in);
    check_one(am_normalize_domain, "domain", in, strlen(in), AM_EINPUT, want);
    /* A long path does not matter. */
    memcpy(in, "https://acme.com/", 17);
    memset(in + 17, 'x', 2000);
    in[2017] = '\0';
    check_one(am_normalize_domain, "domain", in, strlen(in), AM_OK, "acme.com");
}

static void test_normalize__name(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("ООО «Ромашка»", "ромашка"),
        OK("ООО \"Вектор\"", "вектор"),
        OK("ООО «ТК «Магистраль»", "тк магистраль"),
        OK("ООО «Ромашка Плюс»", "ромашка плюс"),
        OK("ООО «Ромашка-М»", "ромашка м"),
        OK("АО «Северсталь-Сервис»", "северсталь сервис"),
        OK("ТОО «Алтын Дала»", "алтын дала"),
        OK("ИП Петрова Анна Сергеевна", "петрова анна сергеевна"),
        OK("ИП Петрова А.С.", "петрова а с"),
        OK("Ромашка, ООО", "ромашка"),
        OK("Общество с ограниченной ответственностью «Ромашка»", "ромашка"),
        OK("ОБЩЕСТВО С ОГРАНИЧЕННОЙ ОТВЕТСТВЕННОСТЬЮ \"РОМАШКА\"", "ромашка"),
        OK("Публичное акционерное общество «Сбербанк России»", "сбербанк россии"),
        OK("Закрытое акционерное общество „Ёлочка“", "елочка"),
        OK("ОАО 'Ёж'", "еж"),
        OK("ПАО ‘Ёж’", "еж"),
        OK("Е\xCC\x88лочка", "елочка"), /* decomposed Ё, composed by NFKC */
        OK("Товарищество с ограниченной ответственностью «Алтын Дала»", "алтын дала"),
        OK("OOO Romashka", "romashka"),
        OK("Acme Robotics, Inc.", "acme robotics"),
        OK("Acme, Inc.", "acme"),
        OK("Northwind Traders Ltd", "northwind traders"),
        OK("Globex Logistics GmbH", "globex logistics"),
        OK("Globex Logistics G.m.b.H.", "globex logistics"),
        OK("Initech Solutions Ltd.", "initech solutions"),
        OK("Stark Manufacturing Pty Ltd", "stark manufacturing"),
        OK("Stark Manufacturing Pty. Ltd.", "stark manufacturing"),
        OK("Acme Trading LLC", "acme trading"),
        OK("Acme Trading L.L.C.", "acme trading"),
        OK("Hooli Cloud SAS", "hooli cloud"),
        OK("Hooli Cloud S.A.S.", "hooli cloud"),
        OK("Vandelay Industries", "vandelay industries"),
        OK("Globex Corporation", "globex"),
        OK("Globex Corp.", "globex"),
        OK("Smith & Co.", "smith"),
        OK("Initech PLC", "initech"),
        OK("Initech LLP", "initech"),
        OK("Initech Limited", "initech"),
        OK("Volvo AB", "volvo"),
        OK("Nokia Oy", "nokia"),
        OK("Philips N.V.", "philips"),
        OK("Unilever BV", "unilever"),
        OK("Siemens AG", "siemens"),
        OK("Renault S.A.", "renault"),
        OK("Dupont SARL", "dupont"),
        OK("Acme Limited Liability Company", "acme"),
        OK("AT&T Inc.", "at t"),
        OK("Johnson & Johnson", "johnson johnson"),
        OK("Acme®", "acme"),
        OK("  Acme   Robotics  ", "acme robotics"),
        OK("ＡＣＭＥ Ｒｏｂｏｔｉｃｓ", "acme robotics"),
        OK("Straße GmbH", "strasse"),
        OK("Café Müller", "café müller"),
        OK("Й-Тек", "й тек"),
        OK("Acme\xC2\xAD" "Robotics", "acmerobotics"), /* soft hyphen is ignorable */
        OK("Acme\xE2\x80\x8B" "Robotics", "acmerobotics"), /* so is a zero-width space */
        OK("Acme\xC2\xA0Robotics", "acme robotics"),       /* no-break space is a space */
        OK("Acme—Robotics", "acme robotics"),
        OK("Coca-Cola Company", "coca cola company"),
        /* nothing left */
        OK("", ""),
        OK("   ", ""),
        OK("ООО", ""),
        OK("Inc.", ""),
        OK("Pty Ltd", ""),
        OK("«»", ""),
        OK("\"\" , .", ""),
        /* bad bytes */
        BAD("Acme \xFF", "name \"Acme ?\" is not valid UTF-8"),
        BAD("\xC0\x80", "name \"??\" is not valid UTF-8"),     /* over-long NUL */
        BAD("\xED\xA0\x80", "name \"???\" is not valid UTF-8"), /* a surrogate */
        BAD("Ромашка\xD0", "name \"Ромашка?\" is not valid UTF-8"),
        BAD("\xF4\x90\x80\x80", "name \"????\" is not valid UTF-8"), /* above U+10FFFF */
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_name, "name", cases, COUNT(cases));
}

/* A NUL, a tab or a line break inside a value is a word break, like any control. */
static void test_normalize__name_controls(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        {"Acme\0Robotics", AM_OK, "acme robotics", 13},
        {"Ромашка\0Плюс", AM_OK, "ромашка плюс", 23},
        {"Acme\tRobotics\r\nInc", AM_OK, "acme robotics", 0},
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_name, "name", cases, COUNT(cases));
}

/* The ASCII fast path gives what utf8proc gives, for every ASCII byte. */
static void test_normalize__name_ascii_fast_path_agrees(void **state)
{
    char fast[AM_NORM_MAX], slow[AM_NORM_MAX], in[8];
    size_t fast_len, slow_len;
    am_error err = {0};
    int c;

    (void)state;
    for (c = 0; c < 0x80; c++) {
        in[0] = 'A';
        in[1] = (char)c;
        in[2] = 'b';
        memcpy(in + 3, "\xC2\xA0", 2); /* no-break space: no word, but not ASCII */
        assert_int_equal(am_normalize_name(fast, sizeof(fast), &fast_len, norm, in, 3, &err),
                         AM_OK);
        assert_int_equal(am_normalize_name(slow, sizeof(slow), &slow_len, norm, in, 5, &err),
                         AM_OK);
        if (fast_len != slow_len || strcmp(fast, slow) != 0) {
            fail_msg("byte 0x%02x: fast \"%s\", utf8proc \"%s\"", c, fast, slow);
        }
    }
}

static void test_normalize__name_too_long(void **state)
{
    char in[5000], want[AM_NORM_MAX];
    size_t i;

    (void)state;
    /* 300 two-byte letters: cut to 254 bytes, not in the middle of a letter. */
    for (i = 0; i < 600; i += 2) {
        memcpy(in + i, "\xD1\x8F", 2); /* я */
    }
    for (i = 0; i < 254; i += 2) {
        memcpy(want + i, "\xD1\x8F", 2);
    }
    want[254] = '\0';
    check_one(am_normalize_name, "name", in, 600, AM_OK, want);

    /* ASCII words: cut at 255 bytes, with no trailing space. */
    for (i = 0; i < 600; i++) {
        in[i] = i % 10 == 9 ? ' ' : 'a';
    }
    memcpy(want, in, 255);
    want[255] = '\0';
    check_one(am_normalize_name, "name", in, 600, AM_OK, want);
    for (i = 0; i < 600; i++) {
        in[i] = i % 8 == 7 ? ' ' : 'a';
    }
    memcpy(want, in, 255); /* byte 255 would be a space: the cut lands after a word */
    want[255] = '\0';
    check_one(am_normalize_name, "name", in, 600, AM_OK, want);

    /* Legal forms past the cut do not matter; before it they go. */
    memset(in, 'b', 4090);
    memcpy(in + 4090, " Ltd.", 5);
    memset(want, 'b', 255);
    want[255] = '\0';
    check_one(am_normalize_name, "name", in, 4095, AM_OK, want);

    /* 2000 Cyrillic letters, then U+FDFA (3 bytes, 18 code points under NFKC) up to 4 KiB:
     * the scratch buffers grow, and the value is still the first 254 bytes. */
    for (i = 0; i < 4000; i += 2) {
        memcpy(in + i, "\xD1\x8F", 2);
    }
    for (i = 0; i < 254; i += 2) {
        memcpy(want + i, "\xD1\x8F", 2);
    }
    want[254] = '\0';
    check_one(am_normalize_name, "name", in, 4000, AM_OK, want);
    for (i = 0; i + 3 <= 4096; i += 3) {
        memcpy(in + i, "\xEF\xB7\xBA", 3);
    }
    check_one(am_normalize_name, "name", in, i, AM_OK, NULL);

    /* More than 4 KiB is no name. */
    memset(in, 'a', sizeof(in));
    check_one(am_normalize_name, "name", in, sizeof(in), AM_EINPUT,
              "name is 5000 bytes long; at most 4096 are accepted");
}

static void test_normalize__city(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("Москва", "москва"),
        OK("г. Москва", "москва"),
        OK("г.Москва", "москва"),
        OK("г Москва", "москва"),
        OK("город Москва", "москва"),
        OK("Москва г", "москва"),
        OK("  МОСКВА  ", "москва"),
        OK("г. Санкт-Петербург", "санкт петербург"),
        OK("Королёв", "королев"),
        OK("Гатчина", "гатчина"),
        OK("Нур-Султан", "нур султан"),
        OK("New York", "new york"),
        OK("City of London", "london"),
        OK("St. Petersburg", "st petersburg"),
        OK("Düsseldorf", "düsseldorf"),
        OK("", ""),
        OK("г.", ""),
        OK("  ", ""),
        BAD("Mos\xFF", "city \"Mos?\" is not valid UTF-8"),
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_city, "city", cases, COUNT(cases));
}

static void test_normalize__country(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("RU", "RU"),
        OK("ru", "RU"),
        OK(" Ru ", "RU"),
        OK("Russia", "RU"),
        OK("Russian Federation", "RU"),
        OK("Россия", "RU"),
        OK("РОССИЯ", "RU"),
        OK("РФ", "RU"),
        OK("Российская Федерация", "RU"),
        OK("RUS", "RU"),
        OK("USA", "US"),
        OK("U.S.A.", "US"),
        OK("US", "US"),
        OK("United States", "US"),
        OK("United States of America", "US"),
        OK("UK", "GB"),
        OK("United Kingdom", "GB"),
        OK("Great Britain", "GB"),
        OK("GB", "GB"),
        OK("Germany", "DE"),
        OK("Deutschland", "DE"),
        OK("Германия", "DE"),
        OK("Kazakhstan", "KZ"),
        OK("Казахстан", "KZ"),
        OK("Belarus", "BY"),
        OK("Беларусь", "BY"),
        OK("France", "FR"),
        OK("Australia", "AU"),
        OK("Netherlands", "NL"),
        OK("The Netherlands", "NL"),
        OK("de", "DE"),
        OK("xk", "XK"),
        OK("", ""),
        OK("  ", ""),
        BAD("Atlantis", "country \"Atlantis\" is not known; use an ISO 3166 code like RU or US"),
        BAD("R", "country \"R\" is not known; use an ISO 3166 code like RU or US"),
        BAD("12", "country \"12\" is not known; use an ISO 3166 code like RU or US"),
        BAD("Рoссия", /* Latin "o" inside */
            "country \"Рoссия\" is not known; use an ISO 3166 code like RU or US"),
        BAD("R\xFF", "country \"R?\" is not valid UTF-8"),
    };
    /* clang-format on */

    (void)state;
    check_cases(am_normalize_country, "country", cases, COUNT(cases));
}

typedef struct tax_case {
    const char *in;
    const char *country;
    am_status rc;
    const char *want;
} tax_case;

static void test_normalize__tax_id(void **state)
{
    /* clang-format off */
    static const tax_case cases[] = {
        /* real, valid INNs: Sberbank and the fixtures */
        {"7707083893", "RU", AM_OK, "RU7707083893"},
        {"7707083893", "", AM_OK, "RU7707083893"},
        {"7712345671", "RU", AM_OK, "RU7712345671"},
        {"7810123451", "", AM_OK, "RU7810123451"},
        {"770198765434", "RU", AM_OK, "RU770198765434"},
        {"500312345614", "", AM_OK, "RU500312345614"},
        {"3528012345", "RU", AM_OK, "RU3528012345"},
        {"6670123457", "RU", AM_OK, "RU6670123457"},
        {"7723456782", "RU", AM_OK, "RU7723456782"},
        /* spelling */
        {"RU7707083893", "", AM_OK, "RU7707083893"},
        {"ru 7707083893", "", AM_OK, "RU7707083893"},
        {"RU7707083893", "KZ", AM_OK, "RU7707083893"}, /* the prefix says whose it is */
        {" 7707 083 893 ", "RU", AM_OK, "RU7707083893"},
        {"77-07-083893", "RU", AM_OK, "RU7707083893"},
        {"7707\xE2\x80\x93" "083893", "RU", AM_OK, "RU7707083893"},
        {"7707\xC2\xA0" "083\xC2\xA0" "893", "RU", AM_OK, "RU7707083893"},
        /* nothing to use */
        {"", "RU", AM_OK, ""},
        {"  -  ", "", AM_OK, ""},
        {"7707083893", "DE", AM_OK, ""}, /* not checked yet: no key */
        {"DE811907980", "", AM_OK, ""},
        {"DE811907980", "RU", AM_OK, ""},
        /* refused */
        {"7707083894", "RU", AM_EINPUT, "tax id \"7707083894\" fails its INN check digit"},
        {"7707083894", "", AM_EINPUT, "tax id \"7707083894\" fails its INN check digit"},
        {"770198765435", "RU", AM_EINPUT, "tax id \"770198765435\" fails its INN check digit"},
        {"770198765424", "RU", AM_EINPUT, "tax id \"770198765424\" fails its INN check digit"},
        {"123", "RU", AM_EINPUT, "tax id \"123\" has 3 digits; a Russian INN has 10 or 12"},
        {"77070838931", "RU", AM_EINPUT,
         "tax id \"77070838931\" has 11 digits; a Russian INN has 10 or 12"},
        {"RU123", "", AM_EINPUT, "tax id \"RU123\" has 3 digits; a Russian INN has 10 or 12"},
        {"7707O83893", "RU", AM_EINPUT,
         "tax id \"7707O83893\" has characters other than digits; a Russian INN has 10 or 12 "
         "digits"},
        {"7707083893.0", "RU", AM_EINPUT,
         "tax id \"7707083893.0\" has characters other than digits; a Russian INN has 10 or 12 "
         "digits"},
        {"0000000000", "", AM_EINPUT, "tax id \"0000000000\" is a placeholder, not an INN"},
        {"000000000000", "RU", AM_EINPUT, "tax id \"000000000000\" is a placeholder, not an INN"},
        {"77070838\xFF", "RU", AM_EINPUT,
         "tax id \"77070838?\" has characters other than digits; a Russian INN has 10 or 12 "
         "digits"},
        {"1234567890123456789012345678901234567890", "RU", AM_EINPUT,
         "tax id \"1234567890123456789012345678901234567890\" has more than 32 digits; a "
         "Russian INN has 10 or 12"},
    };
    /* clang-format on */

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        const tax_case *c = &cases[i];
        am_tax_id tax;
        size_t len = strlen(c->in);
        am_error err = {0};
        const char *g = am_test_guarded(c->in, len);
        am_status rc = am_normalize_tax_id(&tax, norm, g, len, c->country, &err);
        const char *out = tax.value;
        size_t out_len = tax.len;

        am_test_guarded_free(g);
        if (rc != c->rc) {
            fail_msg("tax_id(\"%s\", \"%s\"): %s (%s), want %s", c->in, c->country,
                     am_status_name(rc), err.msg, am_status_name(c->rc));
        }
        if (rc == AM_OK && (strcmp(out, c->want) != 0 || out_len != strlen(out))) {
            fail_msg("tax_id(\"%s\", \"%s\"): \"%s\", want \"%s\"", c->in, c->country, out,
                     c->want);
        }
        if (rc != AM_OK && strcmp(err.msg, c->want) != 0) {
            fail_msg("tax_id(\"%s\"): message \"%s\", want \"%s\"", c->in, err.msg, c->want);
        }
    }
}

/* What am_normalize_country gives is what am_normalize_tax_id takes, and keys use it so. */
static void test_normalize__country_feeds_tax_id(void **state)
{
    char country[AM_NORM_MAX];
    size_t country_len;
    am_tax_id tax;
    am_error err = {0};

    (void)state;
    assert_int_equal(am_normalize_country(country, sizeof(country), &country_len, norm, "Россия",
                                          strlen("Россия"), &err),
                     AM_OK);
    assert_int_equal(am_normalize_tax_id(&tax, norm, "7707083893", 10, country, &err), AM_OK);
    assert_string_equal(tax.value, "RU7707083893");
    assert_int_equal(tax.scheme, AM_TAX_RU_INN);
    assert_false(tax.person);
}

/* Values computed once are values again: normalizing twice changes nothing. */
static void test_normalize__domain_idempotent(void **state)
{
    static const char *const inputs[] = {
        "https://www.Acme.com:443/path?x",
        "ромашка-плюс.рф",
        "shop.initech-solutions.co.uk",
        "foo.github.io",
        "straße.de",
    };
    char once[AM_NORM_MAX], twice[AM_NORM_MAX];
    size_t once_len, twice_len;
    am_error err = {0};

    (void)state;
    for (size_t i = 0; i < COUNT(inputs); i++) {
        assert_int_equal(am_normalize_domain(once, sizeof(once), &once_len, norm, inputs[i],
                                             strlen(inputs[i]), &err),
                         AM_OK);
        assert_int_equal(
            am_normalize_domain(twice, sizeof(twice), &twice_len, norm, once, once_len, &err),
            AM_OK);
        assert_string_equal(once, twice);
    }
}

static void test_normalize__free_null_is_noop(void **state)
{
    (void)state;
    am_normalizer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize__domain_registrable),
        cmocka_unit_test(test_normalize__domain_idn),
        cmocka_unit_test(test_normalize__domain_free_mail_and_social),
        cmocka_unit_test(test_normalize__domain_refused),
        cmocka_unit_test(test_normalize__domain_tld_verdicts_repeat),
        cmocka_unit_test(test_normalize__domain_too_long),
        cmocka_unit_test(test_normalize__domain_idempotent),
        cmocka_unit_test(test_normalize__name),
        cmocka_unit_test(test_normalize__name_controls),
        cmocka_unit_test(test_normalize__name_ascii_fast_path_agrees),
        cmocka_unit_test(test_normalize__name_too_long),
        cmocka_unit_test(test_normalize__city),
        cmocka_unit_test(test_normalize__country),
        cmocka_unit_test(test_normalize__tax_id),
        cmocka_unit_test(test_normalize__country_feeds_tax_id),
        cmocka_unit_test(test_normalize__free_null_is_noop),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
