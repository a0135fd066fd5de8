/*
 * Normalize: the examples of the design, the traps of the CRM fixtures
 * (../shared/fixtures-crm/README.md), bad bytes and over-long input. Every case runs on
 * guarded input, so reading one byte past `len` crashes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/*
 * A website that is a page on a site, not the site's home: a path segment other than a
 * language, a home page or a page where the site describes its own company.
 */
static void test_normalize__site_page_or_home(void **state)
{
    static const struct {
        const char *in;
        const char *domain;
        bool page;
    } cases[] = {
        /* pages: the site may be another company's */
        {"https://www.romashka.ru/moscow/", "romashka.ru", true},
        {"http://shop.initech-solutions.co.uk/catalog", "initech-solutions.co.uk", true},
        {"www.romashka.ru/moscow", "romashka.ru", true},
        {"https://acme.com/en/dealers/kazan", "acme.com", true},
        {"https://acme.com/index.php.bak", "acme.com", true},
        {"https://acme.com:8080/~tenant/", "acme.com", true},
        {"https://acme.com\\partners", "acme.com", true},
        {"https://acme.com/%D0%BC%D1%81%D0%BA/", "acme.com", true},
        /* the site itself */
        {"https://stark-mfg.com.au/en/", "stark-mfg.com.au", false},
        {"https://www.romashka.ru/", "romashka.ru", false},
        {"https://romashka.ru", "romashka.ru", false},
        {"romashka.ru", "romashka.ru", false},
        {"info@romashka.ru", "romashka.ru", false},
        {"http://www.vector-spb.ru/index.php?route=common/home", "vector-spb.ru", false},
        {"vector-spb.ru/index.php", "vector-spb.ru", false},
        {"https://acme.com/EN-US/Index.HTML", "acme.com", false},
        {"https://acme.com/pt_BR/", "acme.com", false},
        {"https://acme.com/zh-hans/home", "acme.com", false},
        {"https://acme.com//./default.aspx", "acme.com", false},
        {"https://www.volga-logistik.com/about-us", "volga-logistik.com", false},
        {"http://acme.com/contacts", "acme.com", false},
        {"https://www.acme.com:443/about?lang=ru", "acme.com", false},
        {"https://acme.com/?city=moscow#branch", "acme.com", false},
        {"https://www.ромашка-плюс.рф/о-нас", ROMASHKA_PLUS, false},
        {"<https://acme.com/en>.", "acme.com", false},
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        char out[AM_NORM_MAX];
        size_t len = 99;
        bool page = !cases[i].page;
        am_error err = {0};
        if (am_normalize_site(out, sizeof(out), &len, &page, norm, cases[i].in,
                              strlen(cases[i].in), &err) != AM_OK) {
            fail_msg("%s: %s", cases[i].in, err.msg);
        }
        if (strcmp(out, cases[i].domain) != 0 || page != cases[i].page) {
            fail_msg("%s: got %s page=%d, want %s page=%d", cases[i].in, out, page,
                     cases[i].domain, cases[i].page);
        }
    }
    /* No domain, no page; a free-mail page is no key at all. */
    {
        char out[AM_NORM_MAX];
        size_t len = 99;
        bool page = true;
        am_error err = {0};
        assert_int_equal(am_normalize_site(out, sizeof(out), &len, &page, norm,
                                           "https://vk.com/romashka", 23, &err), AM_OK);
        assert_int_equal(len, 0);
        assert_false(page);
        page = true;
        assert_int_equal(am_normalize_site(out, sizeof(out), &len, &page, norm,
                                           "https://acme..com/x", 19, &err), AM_EINPUT);
        assert_false(page);
    }
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
        /* CIS forms, short and full */
        OK("ОДО «Вектор»", "вектор"),
        OK("ЧУП «Ромашка»", "ромашка"),
        OK("ФГУП «Почта России»", "почта россии"),
        OK("ГУП «Мосгортранс»", "мосгортранс"),
        OK("МУП «Водоканал»", "водоканал"),
        OK("НКО «Фонд Развития»", "фонд развития"),
        OK("АНО «Развитие»", "развитие"),
        OK("НАО «Ромашка»", "ромашка"),
        OK("Непубличное акционерное общество «Ромашка»", "ромашка"),
        OK("Федеральное государственное унитарное предприятие «Почта России»", "почта россии"),
        OK("Муниципальное унитарное предприятие \"Водоканал\"", "водоканал"),
        OK("Автономная некоммерческая организация «Развитие»", "развитие"),
        OK("Общество с дополнительной ответственностью «Вектор»", "вектор"),
        OK("Частное унитарное предприятие «Ромашка»", "ромашка"),
        OK("Индивидуальный предприниматель Петрова Анна Сергеевна", "петрова анна сергеевна"),
        /* German, French, Dutch, Nordic, Polish, Italian, Spanish forms */
        OK("Globex Logistics GmbH & Co. KG", "globex logistics"),
        OK("Acme AG & Co. KG", "acme"),
        OK("Acme UG (haftungsbeschränkt)", "acme"),
        OK("Acme Gesellschaft mit beschränkter Haftung", "acme"),
        OK("Müller OHG", "müller"),
        OK("Orange S.A.", "orange"),
        OK("Acme SASU", "acme"),
        OK("Acme EURL", "acme"),
        OK("Heineken N.V.", "heineken"),
        OK("Acme B.V.", "acme"),
        OK("Telenor ASA", "telenor"),
        OK("Equinor AS", "equinor"),
        OK("Maersk A/S", "maersk"),
        OK("Novo ApS", "novo"),
        OK("Volvo AB (publ)", "volvo"),
        OK("Kone Oyj", "kone"),
        OK("Allianz SE", "allianz"),
        OK("Fiat S.p.A.", "fiat"),
        OK("Acme S.r.l.", "acme"),
        OK("Zara España, S.L.", "zara españa"),
        OK("Nowak Sp. z o.o.", "nowak"),
        OK("Nowak sp. z o.o. sp. k.", "nowak"),
        OK("Nowak Spółka z ograniczoną odpowiedzialnością", "nowak"),
        OK("Acme Co. Ltd", "acme"),
        OK("Acme Co., Ltd.", "acme"),
        /* short forms that are words stay at the start and in the middle */
        OK("SA Recycling", "sa recycling"),
        OK("SA Recycling LLC", "sa recycling"),
        OK("Co-op Foods", "co op foods"),
        OK("AB InBev", "ab inbev"),
        OK("SAS Institute Inc.", "sas institute"),
        OK("AS Roma", "as roma"),
        OK("Ag Growth International", "ag growth international"),
        OK("Oy Vey Bagels", "oy vey bagels"),
        OK("KG Logistics", "kg logistics"),
        OK("Nv Energy Co", "nv energy"),
        OK("Spa Resort SpA", "spa resort"),
        OK("Acme Co Inc", "acme"),
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
        OK("Canada", "CA"),
        OK("Österreich", "AT"),
        OK("Czech Republic", "CZ"),
        OK("Италия", "IT"),
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
    const char *want; /* the value, or the message */
    am_tax_scheme scheme;
    bool person;
    bool zero_restored;
} tax_case;

#define TAX(in, country, want, scheme)                                                             \
    {                                                                                              \
        (in), (country), AM_OK, (want), (scheme), false, false                                     \
    }
#define TAX_PERSON(in, country, want, scheme)                                                      \
    {                                                                                              \
        (in), (country), AM_OK, (want), (scheme), true, false                                      \
    }
#define TAX_RESTORED(in, country, want, person)                                                    \
    {                                                                                              \
        (in), (country), AM_OK, (want), AM_TAX_RU_INN, (person), true                              \
    }
#define NO_TAX(in, country)                                                                        \
    {                                                                                              \
        (in), (country), AM_OK, "", AM_TAX_NONE, false, false                                      \
    }
#define BAD_TAX(in, country, msg)                                                                  \
    {                                                                                              \
        (in), (country), AM_EINPUT, (msg), AM_TAX_NONE, false, false                               \
    }

#define RU_RULE "a Russian INN has 10 or 12, an OGRN 13, an OGRNIP 15"
#define NO_COUNTRY " (with no country, an id is read as Russian)"
#define FR_RULE "a SIREN has 9, a SIRET 14, a French VAT number 11 after FR"

/* clang-format off */
static const tax_case tax_cases[] = {
    /* Russian INN: real, valid ones (Sberbank) and the fixtures */
    TAX("7707083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707083893", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("7712345671", "RU", "RU7712345671", AM_TAX_RU_INN),
    TAX("7810123451", "", "RU7810123451", AM_TAX_RU_INN),
    TAX_PERSON("770198765434", "RU", "RU770198765434", AM_TAX_RU_INN),
    TAX_PERSON("500312345614", "", "RU500312345614", AM_TAX_RU_INN),
    TAX("3528012345", "RU", "RU3528012345", AM_TAX_RU_INN),
    TAX("6670123457", "RU", "RU6670123457", AM_TAX_RU_INN),
    TAX("7723456782", "RU", "RU7723456782", AM_TAX_RU_INN),
    /* as CRMs hold them */
    TAX("RU7707083893", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("ru 7707083893", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("RU7707083893", "KZ", "RU7707083893", AM_TAX_RU_INN), /* the prefix says whose it is */
    TAX(" 7707 083 893 ", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("77-07-083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707\xE2\x80\x93" "083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707\xC2\xA0" "083\xC2\xA0" "893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН 7707083893", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("инн:7707083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("INN: 7707083893", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН № 7707083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН\xC2\xA0" "7707083893", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН 7707083893", "KZ", "RU7707083893", AM_TAX_RU_INN), /* the label says whose */
    /* INN/KPP: the KPP names a branch; the INN is the company */
    TAX("7707083893/770701001", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707083893\\770701001", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707083893 / 770701001", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН/КПП 7707083893/770701001", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН/КПП: 7712345671 / 165545001", "RU", "RU7712345671", AM_TAX_RU_INN),
    TAX("ИНН 7712345671 КПП 165545001", "RU", "RU7712345671", AM_TAX_RU_INN),
    TAX("7707083893 KPP 7707AB001", "RU", "RU7707083893", AM_TAX_RU_INN),
    TAX("ИНН 7707083893, КПП 770701001", "", "RU7707083893", AM_TAX_RU_INN),
    TAX("7707083893; 770701001", "RU", "RU7707083893", AM_TAX_RU_INN),
    BAD_TAX("DE136695976, DE811569869", "",
            "tax id \"DE136695976, DE811569869\" holds more than one value; give one id"),
    BAD_TAX("7707083893, 7712345671", "RU",
            "tax id \"7707083893, 7712345671\" is not an INN and its KPP; give the 10-digit INN"),
    BAD_TAX("КПП 770701001", "RU",
            "tax id \"КПП 770701001\" is a KPP, which names a branch; give the company's INN"),
    BAD_TAX("7707083893/12345", "RU",
            "tax id \"7707083893/12345\" is not an INN and its KPP; give the 10-digit INN"),
    BAD_TAX("500312345614/771201001", "RU",
            "tax id \"500312345614/771201001\" is not an INN and its KPP; give the 10-digit INN"),
    BAD_TAX("7707083893/7712345671", "RU",
            "tax id \"7707083893/7712345671\" is not an INN and its KPP; give the 10-digit INN"),
    BAD_TAX("7707083894/770701001", "RU",
            "tax id \"7707083894/770701001\" fails its INN check digit"),
    /* OGRN and OGRNIP (the fixtures' requisites) */
    TAX("1027700132195", "RU", "RU-OGRN1027700132195", AM_TAX_RU_OGRN),
    TAX("1027700123450", "", "RU-OGRN1027700123450", AM_TAX_RU_OGRN),
    TAX("1157847123455", "RU", "RU-OGRN1157847123455", AM_TAX_RU_OGRN),
    TAX("ОГРН 1026602123459", "", "RU-OGRN1026602123459", AM_TAX_RU_OGRN),
    TAX("OGRN: 1027700132195", "RU", "RU-OGRN1027700132195", AM_TAX_RU_OGRN),
    TAX_PERSON("319500300123453", "RU", "RU-OGRNIP319500300123453", AM_TAX_RU_OGRNIP),
    TAX_PERSON("ОГРНИП 319500300123453", "", "RU-OGRNIP319500300123453", AM_TAX_RU_OGRNIP),
    BAD_TAX("1027700132196", "RU", "tax id \"1027700132196\" fails its OGRN check digit"),
    BAD_TAX("319500300123454", "", "tax id \"319500300123454\" fails its OGRNIP check digit"),
    BAD_TAX("ОГРН 7707083893", "RU", "tax id \"ОГРН 7707083893\" has 10 digits; an OGRN has 13"),
    BAD_TAX("ОГРНИП 1027700132195", "RU",
            "tax id \"ОГРНИП 1027700132195\" has 13 digits; an OGRNIP has 15"),
    /* an INN that lost its leading zero in a spreadsheet */
    TAX_RESTORED("105012349", "RU", "RU0105012349", false),
    TAX_RESTORED("105012349", "", "RU0105012349", false),
    TAX_RESTORED("908000012", "RU", "RU0908000012", false),
    TAX_RESTORED("ИНН 276123458", "", "RU0276123458", false),
    TAX_RESTORED("10501234581", "RU", "RU010501234581", true),
    TAX_RESTORED("27612345663", "", "RU027612345663", true),
    TAX("0105012349", "RU", "RU0105012349", AM_TAX_RU_INN), /* written as text: nothing lost */
    BAD_TAX("105012348", "RU",
            "tax id \"105012348\" has 9 digits; " RU_RULE),
    /* no restoring outside Russia, even under a label, nor after a prefix (text lost nothing) */
    BAD_TAX("ИНН 105012349", "DE",
            "tax id \"ИНН 105012349\" has 9 digits; a Russian INN has 10 or 12"),
    BAD_TAX("RU105012349", "", "tax id \"RU105012349\" has 9 digits; " RU_RULE),
    BAD_TAX("050701001", "RU", "tax id \"050701001\" has 9 digits; " RU_RULE), /* a KPP */
    BAD_TAX("123456789", "", "tax id \"123456789\" has 9 digits; " RU_RULE NO_COUNTRY),
    /* Kazakhstan: BIN, and a person's IIN */
    TAX("971240001315", "KZ", "KZ-BIN971240001315", AM_TAX_KZ_BIN),
    TAX("940740000911", "KZ", "KZ-BIN940740000911", AM_TAX_KZ_BIN),
    TAX("151241447730", "KZ", "KZ-BIN151241447730", AM_TAX_KZ_BIN), /* the second pass */
    TAX("БИН 971240001315", "", "KZ-BIN971240001315", AM_TAX_KZ_BIN),
    TAX("KZ971240001315", "", "KZ-BIN971240001315", AM_TAX_KZ_BIN),
    TAX("BIN: 9712 4000 1315", "RU", "KZ-BIN971240001315", AM_TAX_KZ_BIN),
    TAX_PERSON("850515300125", "KZ", "KZ-BIN850515300125", AM_TAX_KZ_BIN),
    TAX_PERSON("ИИН 850515300125", "", "KZ-BIN850515300125", AM_TAX_KZ_BIN),
    BAD_TAX("971240001316", "KZ", "tax id \"971240001316\" fails its BIN check digit"),
    BAD_TAX("7707083893", "KZ", "tax id \"7707083893\" has 10 digits; a Kazakh BIN has 12"),
    BAD_TAX("ИНН KZ971240001315", "",
            "tax id \"ИНН KZ971240001315\" has a label and a country prefix that disagree"),
    BAD_TAX("971240001315/123", "KZ",
            "tax id \"971240001315/123\" holds more than one value; give one id"),
    /* Belarus: UNP */
    TAX("100582333", "BY", "BY-UNP100582333", AM_TAX_BY_UNP),
    TAX("УНП 190542056", "", "BY-UNP190542056", AM_TAX_BY_UNP),
    TAX("BY600122610", "", "BY-UNP600122610", AM_TAX_BY_UNP),
    NO_TAX("AB1234567", "BY"),     /* a letter form: not checked, no key */
    NO_TAX("УНП AB7123456", "BY"),
    BAD_TAX("100582334", "BY", "tax id \"100582334\" fails its UNP check digit"),
    BAD_TAX("10058233", "BY", "tax id \"10058233\" has 8 digits; a Belarusian UNP has 9"),
    /* France: SIREN, SIRET and VAT all give the SIREN */
    TAX("732829320", "FR", "FR-SIREN732829320", AM_TAX_FR_SIREN),
    TAX("732 829 320", "FR", "FR-SIREN732829320", AM_TAX_FR_SIREN),
    TAX("SIREN 542 051 180", "", "FR-SIREN542051180", AM_TAX_FR_SIREN),
    TAX("73282932000074", "FR", "FR-SIREN732829320", AM_TAX_FR_SIREN),
    TAX("SIRET: 732 829 320 00074", "", "FR-SIREN732829320", AM_TAX_FR_SIREN),
    TAX("35600000049837", "FR", "FR-SIREN356000000", AM_TAX_FR_SIREN), /* La Poste */
    TAX("FR40303265045", "", "FR-SIREN303265045", AM_TAX_FR_SIREN),
    TAX("FR 59 542 051 180", "DE", "FR-SIREN542051180", AM_TAX_FR_SIREN),
    TAX("TVA FR59542051180", "FR", "FR-SIREN542051180", AM_TAX_FR_SIREN),
    TAX("FRXH303265045", "", "FR-SIREN303265045", AM_TAX_FR_SIREN), /* a letter key */
    BAD_TAX("FR41303265045", "", "tax id \"FR41303265045\" fails its FR VAT check digit"),
    BAD_TAX("732829321", "FR", "tax id \"732829321\" fails its SIREN check digit"),
    BAD_TAX("73282932000075", "FR", "tax id \"73282932000075\" fails its SIRET check digit"),
    BAD_TAX("35600000049838", "FR", "tax id \"35600000049838\" fails its SIRET check digit"),
    BAD_TAX("12345", "FR", "tax id \"12345\" has 5 digits; " FR_RULE),
    /* EU VAT */
    TAX("DE136695976", "", "VAT-DE136695976", AM_TAX_EU_VAT),
    TAX("DE 811 569 869", "RU", "VAT-DE811569869", AM_TAX_EU_VAT),
    TAX("USt-IdNr.: DE811907980", "DE", "VAT-DE811907980", AM_TAX_EU_VAT),
    TAX("VAT No. DE129273398", "", "VAT-DE129273398", AM_TAX_EU_VAT),
    TAX("VAT 811569869", "DE", "VAT-DE811569869", AM_TAX_EU_VAT),
    TAX("ATU13585627", "", "VAT-ATU13585627", AM_TAX_EU_VAT),
    TAX("atu 10223006", "AT", "VAT-ATU10223006", AM_TAX_EU_VAT),
    TAX("BE0403170701", "", "VAT-BE0403170701", AM_TAX_EU_VAT),
    TAX("NL004495445B01", "", "VAT-NL004495445B01", AM_TAX_EU_VAT),
    TAX("NL000099998B57", "", "VAT-NL000099998B57", AM_TAX_EU_VAT), /* MOD 97 */
    TAX("IT00743110157", "", "VAT-IT00743110157", AM_TAX_EU_VAT),
    TAX("P.IVA 00905811006", "IT", "VAT-IT00905811006", AM_TAX_EU_VAT),
    TAX("PL5260250274", "", "VAT-PL5260250274", AM_TAX_EU_VAT),
    TAX("NIP 526-025-02-74", "PL", "VAT-PL5260250274", AM_TAX_EU_VAT),
    TAX("ESA28015865", "", "VAT-ESA28015865", AM_TAX_EU_VAT),
    TAX_PERSON("ES12345678Z", "", "VAT-ES12345678Z", AM_TAX_EU_VAT),
    TAX_PERSON("NIF X1234567L", "ES", "VAT-ESX1234567L", AM_TAX_EU_VAT),
    NO_TAX("811569869", "DE"), /* no prefix, no label: a Steuernummer as likely as a VAT */
    NO_TAX("SE556703748501", ""), /* no check here: no key */
    NO_TAX("DK13585628", "RU"),
    NO_TAX("GB123456789", ""),
    NO_TAX("21/815/08150", "DE"),
    BAD_TAX("DE136695977", "", "tax id \"DE136695977\" fails its DE VAT check digit"),
    BAD_TAX("DE12345", "", "tax id \"DE12345\" is not a DE VAT number (DE and 9 digits)"),
    BAD_TAX("ATU13585628", "", "tax id \"ATU13585628\" fails its AT VAT check digit"),
    BAD_TAX("NL004495446B01", "", "tax id \"NL004495446B01\" fails its NL VAT check digit"),
    BAD_TAX("IT00743110158", "", "tax id \"IT00743110158\" fails its IT VAT check digit"),
    BAD_TAX("PL5260250275", "", "tax id \"PL5260250275\" fails its PL VAT check digit"),
    BAD_TAX("ESA28015866", "", "tax id \"ESA28015866\" fails its ES VAT check digit"),
    BAD_TAX("ES12345678A", "", "tax id \"ES12345678A\" fails its ES VAT check digit"),
    BAD_TAX("DE000000000", "", "tax id \"DE000000000\" is not a DE VAT number (DE and 9 digits)"),
    /* DUNS */
    TAX("DUNS 150483782", "RU", "DUNS150483782", AM_TAX_DUNS),
    TAX("D-U-N-S: 15-048-3782", "", "DUNS150483782", AM_TAX_DUNS),
    TAX("D.U.N.S. Number 150483782", "FR", "DUNS150483782", AM_TAX_DUNS),
    TAX("15-048-3782", "", "DUNS150483782", AM_TAX_DUNS),
    TAX("15-048-3782", "DE", "DUNS150483782", AM_TAX_DUNS),
    TAX("150483782", "US", "DUNS150483782", AM_TAX_DUNS),
    TAX("50483782", "GB", "DUNS050483782", AM_TAX_DUNS),
    TAX("DUNS 4483782", "", "DUNS004483782", AM_TAX_DUNS),
    NO_TAX("12-3456789", "US"), /* a US EIN */
    NO_TAX("150483782", "DE"),
    BAD_TAX("15-048-3782", "RU", "tax id \"15-048-3782\" has 9 digits; " RU_RULE),
    BAD_TAX("DUNS 12345", "", "tax id \"DUNS 12345\" has 5 digits; a DUNS number has 9"),
    BAD_TAX("DUNS 000000000", "", "tax id \"DUNS 000000000\" is a placeholder, not a tax id"),
    BAD_TAX("DUNS RU150483782", "",
            "tax id \"DUNS RU150483782\" has a label and a country prefix that disagree"),
    /* nothing to use */
    NO_TAX("", "RU"),
    NO_TAX("  -  ", ""),
    NO_TAX("ИНН", ""),
    NO_TAX("INN: ", "RU"),
    NO_TAX("7707083893", "DE"), /* a Russian id in a German record, with no label or prefix */
    NO_TAX("XX7707083893", "RU"),
    /* refused */
    BAD_TAX("7707083894", "RU", "tax id \"7707083894\" fails its INN check digit"),
    BAD_TAX("7707083894", "", "tax id \"7707083894\" fails its INN check digit"),
    BAD_TAX("770198765435", "RU", "tax id \"770198765435\" fails its INN check digit"),
    BAD_TAX("770198765424", "RU", "tax id \"770198765424\" fails its INN check digit"),
    BAD_TAX("123", "RU", "tax id \"123\" has 3 digits; " RU_RULE),
    BAD_TAX("123", "", "tax id \"123\" has 3 digits; " RU_RULE NO_COUNTRY),
    BAD_TAX("77070838931", "RU", "tax id \"77070838931\" has 11 digits; " RU_RULE),
    BAD_TAX("RU123", "", "tax id \"RU123\" has 3 digits; " RU_RULE),
    BAD_TAX("7707O83893", "RU",
            "tax id \"7707O83893\" has characters other than digits; " RU_RULE " digits"),
    BAD_TAX("7707083893.0", "RU",
            "tax id \"7707083893.0\" has characters other than digits; " RU_RULE " digits"),
    BAD_TAX("0000000000", "", "tax id \"0000000000\" is a placeholder, not a tax id"),
    BAD_TAX("000000000000", "RU", "tax id \"000000000000\" is a placeholder, not a tax id"),
    BAD_TAX("77070838\xFF", "RU",
            "tax id \"77070838?\" has characters other than digits; " RU_RULE " digits"),
    BAD_TAX("1234567890123456789012345678901234567890", "RU",
            "tax id \"1234567890123456789012345678901234567890\" has more than 32 digits; "
            RU_RULE),
};
/* clang-format on */

static void check_tax(const tax_case *c)
{
    am_tax_id tax;
    size_t len = strlen(c->in);
    am_error err = {0};
    const char *g = am_test_guarded(c->in, len);
    am_status rc = am_normalize_tax_id(&tax, norm, g, len, c->country, &err);

    am_test_guarded_free(g);
    if (rc != c->rc) {
        fail_msg("tax_id(\"%s\", \"%s\"): %s (%s), want %s", c->in, c->country, am_status_name(rc),
                 err.msg, am_status_name(c->rc));
    }
    if (rc != AM_OK) {
        if (strcmp(err.msg, c->want) != 0) {
            fail_msg("tax_id(\"%s\", \"%s\"): message \"%s\", want \"%s\"", c->in, c->country,
                     err.msg, c->want);
        }
        if (tax.len != 0 || tax.value[0] != '\0' || tax.scheme != AM_TAX_NONE) {
            fail_msg("tax_id(\"%s\", \"%s\"): a value beside an error", c->in, c->country);
        }
        return;
    }
    if (strcmp(tax.value, c->want) != 0 || tax.len != strlen(tax.value)) {
        fail_msg("tax_id(\"%s\", \"%s\"): \"%s\", want \"%s\"", c->in, c->country, tax.value,
                 c->want);
    }
    if (tax.scheme != c->scheme || tax.person != c->person ||
        tax.zero_restored != c->zero_restored) {
        fail_msg("tax_id(\"%s\", \"%s\"): scheme %d person %d restored %d, want %d %d %d", c->in,
                 c->country, (int)tax.scheme, tax.person, tax.zero_restored, (int)c->scheme,
                 c->person, c->zero_restored);
    }
}

static void test_normalize__tax_id(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(tax_cases); i++) {
        check_tax(&tax_cases[i]);
    }
}

/*
 * A value is a value again, with no country: same text, same scheme, same person flag, and
 * nothing restored the second time. keys.c and stored runs rely on it.
 */
static void test_normalize__tax_id_values_are_fixed_points(void **state)
{
    (void)state;
    for (size_t i = 0; i < COUNT(tax_cases); i++) {
        const tax_case *c = &tax_cases[i];
        tax_case again;

        if (c->rc != AM_OK || c->want[0] == '\0') {
            continue;
        }
        again = *c;
        again.in = c->want;
        again.country = "";
        again.zero_restored = false;
        check_tax(&again);
    }
}

typedef struct person_case {
    const char *in;
    bool person;
} person_case;

/* An individual entrepreneur is a person, whom a name alone never links. */
static void test_normalize__name_is_person(void **state)
{
    /* clang-format off */
    static const person_case cases[] = {
        {"ИП Иванов Иван Иванович", true},
        {"ИП Петрова А.С.", true},
        {"ип петрова", true},
        {"Ип Петрова", true},
        {"ИП\xC2\xA0Петрова", true},
        {"  ИП Петрова", true},
        {"«ИП Петрова»", true},
        {"И.П. Петрова", false}, /* "и п": not the form */
        {"Индивидуальный предприниматель Иванов И.И.", true},
        {"ИНДИВИДУАЛЬНЫЙ ПРЕДПРИНИМАТЕЛЬ ИВАНОВ", true},
        {"Иванов Иван Иванович, ИП", true},
        {"Иванов И.И. (индивидуальный предприниматель)", true},
        {"ИП", true},
        {"ООО «Ромашка»", false},
        {"ИПОТЕКА-ЦЕНТР", false},
        {"Ипподром", false},
        {"Центр ИП-Консалт", false},
        {"IP Ivanov", false}, /* Latin "IP" is as often an internet company: not read */
        {"Ivanov IP", false},
        {"IP Telecom", false},
        {"", false},
        {"ИП \xFF", false},
    };
    /* clang-format on */

    (void)state;
    for (size_t i = 0; i < COUNT(cases); i++) {
        size_t len = strlen(cases[i].in);
        const char *g = am_test_guarded(cases[i].in, len);
        bool got = am_normalize_name_is_person(norm, g, len);

        am_test_guarded_free(g);
        if (got != cases[i].person) {
            fail_msg("name_is_person(\"%s\"): %d, want %d", cases[i].in, got, cases[i].person);
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

/* A directory of our own holding a free-domains.txt of `text`; `dir` gets its path. */
static void make_data_dir(char dir[64], const char *text)
{
    char path[128];
    FILE *f;

    snprintf(dir, 64, "/tmp/acctmap-normalize-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/free-domains.txt", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void remove_data_dir(const char *dir)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/free-domains.txt", dir);
    unlink(path);
    rmdir(dir);
}

/* The list is the file's, not a built-in one: ACCTMAP_DATA_DIR points at another. */
static void test_normalize__free_domains_from_data_dir(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("x@acme-mail.com", ""),
        OK("https://www.example.org/", ""),
        OK("a.b.example.org", ""),
        OK("notexample.org", "notexample.org"),
        OK("gmail.com", "gmail.com"), /* not in this list */
    };
    /* clang-format on */
    am_normalizer *saved = norm, *mine = NULL;
    am_error err = {0};
    char dir[64];

    (void)state;
    make_data_dir(dir, "# mine\n\n  Acme-Mail.COM  # upper case and a comment\r\nexample.org\n"
                       "example.org\n\t\n# the end, no newline: \nt.me");
    setenv("ACCTMAP_DATA_DIR", dir, 1);
    assert_int_equal(am_normalizer_new(&mine, &err), AM_OK);
    unsetenv("ACCTMAP_DATA_DIR");
    remove_data_dir(dir);
    norm = mine;
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
    check_one(am_normalize_domain, "domain", "t.me", 4, AM_OK, "");
    norm = saved;
    am_normalizer_free(mine);

    /* An empty ACCTMAP_DATA_DIR is no directory: the built-in path is used. */
    setenv("ACCTMAP_DATA_DIR", "", 1);
    assert_int_equal(am_normalizer_new(&mine, &err), AM_OK);
    unsetenv("ACCTMAP_DATA_DIR");
    am_normalizer_free(mine);
}

static void test_normalize__free_domains_missing_or_bad(void **state)
{
    static const struct {
        const char *text;
        const char *msg; /* after "<dir>/free-domains.txt" */
    } bad[] = {
        {"gmail.com\nfoo bar\n", ":2: \"foo bar\" is not a domain; write one domain a line, IDN "
                                 "in punycode"},
        {"localhost\n", ":1: \"localhost\" is not a domain; write one domain a line, IDN in "
                        "punycode"},
        {"# ok\n192.168.0.1\n", ":2: \"192.168.0.1\" is not a domain; write one domain a line, "
                                "IDN in punycode"},
        {"mail.ru.\n", ":1: \"mail.ru.\" is not a domain; write one domain a line, IDN in "
                       "punycode"},
        {"почта.рф\n", ":1: \"почта.рф\" is not a domain; write one domain a line, IDN in "
                       "punycode"},
        {"a\0b.com\n", ""}, /* strlen stops at the NUL: "a" is no domain */
    };
    am_normalizer *mine = (am_normalizer *)&mine;
    am_error err = {0};
    char dir[64], want[256];

    (void)state;
    setenv("ACCTMAP_DATA_DIR", "/nonexistent-acctmap", 1);
    assert_int_equal(am_normalizer_new(&mine, &err), AM_EIO);
    assert_null(mine);
    assert_string_equal(err.msg, "cannot read the list of free-mail domains "
                                 "/nonexistent-acctmap/free-domains.txt (No such file or "
                                 "directory); set ACCTMAP_DATA_DIR to the directory that holds "
                                 "free-domains.txt");
    for (size_t i = 0; i < COUNT(bad); i++) {
        make_data_dir(dir, bad[i].text);
        setenv("ACCTMAP_DATA_DIR", dir, 1);
        mine = (am_normalizer *)&mine;
        assert_int_equal(am_normalizer_new(&mine, &err), AM_EINPUT);
        assert_null(mine);
        if (bad[i].msg[0]) {
            snprintf(want, sizeof(want), "%s/free-domains.txt%s", dir, bad[i].msg);
            assert_string_equal(err.msg, want);
        }
        remove_data_dir(dir);
    }
    unsetenv("ACCTMAP_DATA_DIR");
}

/*
 * The shipped list: at least 60 domains, each of them no key; the private section of the
 * public suffix list stays off it (each subdomain there is its own site).
 */
static void test_normalize__free_domains_shipped_list(void **state)
{
    /* clang-format off */
    static const norm_case cases[] = {
        OK("foo.github.io", "foo.github.io"),
        OK("acme.blogspot.com", "acme.blogspot.com"),
        OK("acme.netlify.app", "acme.netlify.app"),
        OK("ivanov@yandex.kz", ""),
        OK("https://hh.ru/employer/12345", ""),
        OK("https://2gis.ru/moscow/firm/123", ""),
        OK("https://acme.ucoz.net/", ""),
        OK("https://acme.wordpress.com/", ""),
        OK("https://clck.ru/abc", ""),
    };
    /* clang-format on */
    char path[4096], line[512];
    size_t domains = 0;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/data/free-domains.txt", am_test_root());
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *hash = strchr(line, '#'), *end;

        if (hash) {
            *hash = '\0';
        }
        end = line + strlen(line);
        while (end > line && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
            *--end = '\0';
        }
        if (line[0] == '\0') {
            continue;
        }
        check_one(am_normalize_domain, "domain", line, strlen(line), AM_OK, "");
        domains++;
    }
    fclose(f);
    assert_true(domains >= 60);
    check_cases(am_normalize_domain, "domain", cases, COUNT(cases));
}

static void test_normalize__free_null_is_noop(void **state)
{
    (void)state;
    am_normalizer_free(NULL);
}

static void test_normalize__latin_spelling_of_cyrillic_names(void **state)
{
    static const struct {
        const char *core, *want;
    } cases[] = {
        {"ромашка плюс", "romashka plyus"},
        {"щука и ёж", "shchuka i ezh"},
        {"северный ветер 2", "severnyy veter 2"},
        {"алтын дала", "altyn dala"},
        {"қазақ ұлттық", "kazak ulttyk"},
        {"acme robotics", ""}, /* Latin already */
        {"ромашка 東京", ""},  /* a letter the table does not know: no spelling */
    };
    size_t i;

    (void)state;
    for (i = 0; i < COUNT(cases); i++) {
        char out[AM_NORM_MAX];
        size_t len = 99, in_len = strlen(cases[i].core);
        am_error err = {0};
        const char *g = am_test_guarded(cases[i].core, in_len);
        assert_int_equal(am_normalize_name_latin(out, sizeof(out), &len, g, in_len, &err), AM_OK);
        am_test_guarded_free(g);
        if (strcmp(len ? out : "", cases[i].want) != 0 || len != strlen(cases[i].want)) {
            fail_msg("latin(\"%s\"): \"%s\", want \"%s\"", cases[i].core, len ? out : "",
                     cases[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize__domain_registrable),
        cmocka_unit_test(test_normalize__domain_idn),
        cmocka_unit_test(test_normalize__site_page_or_home),
        cmocka_unit_test(test_normalize__domain_free_mail_and_social),
        cmocka_unit_test(test_normalize__domain_refused),
        cmocka_unit_test(test_normalize__domain_tld_verdicts_repeat),
        cmocka_unit_test(test_normalize__domain_too_long),
        cmocka_unit_test(test_normalize__domain_idempotent),
        cmocka_unit_test(test_normalize__name),
        cmocka_unit_test(test_normalize__name_controls),
        cmocka_unit_test(test_normalize__name_is_person),
        cmocka_unit_test(test_normalize__name_ascii_fast_path_agrees),
        cmocka_unit_test(test_normalize__name_too_long),
        cmocka_unit_test(test_normalize__city),
        cmocka_unit_test(test_normalize__country),
        cmocka_unit_test(test_normalize__tax_id),
        cmocka_unit_test(test_normalize__tax_id_values_are_fixed_points),
        cmocka_unit_test(test_normalize__country_feeds_tax_id),
        cmocka_unit_test(test_normalize__free_domains_from_data_dir),
        cmocka_unit_test(test_normalize__free_domains_missing_or_bad),
        cmocka_unit_test(test_normalize__free_domains_shipped_list),
        cmocka_unit_test(test_normalize__free_null_is_noop),
        cmocka_unit_test(test_normalize__latin_spelling_of_cyrillic_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
