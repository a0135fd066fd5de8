#!/usr/bin/env python3
"""Regenerate fixtures/match/: the labelled set that bench/match_eval scores matching on.

Builds seeded companies (Russian and CIS ones with INNs, KPPs and Cyrillic names;
international ones known mostly by website), writes two CRM exports of them with the
spellings real exports have, and labels record pairs:

  fixtures/match/left.csv      org "left"  (id,name,domain,tax_id,country,status,city)
  fixtures/match/right.csv     org "right"
  fixtures/match/acctmap.json  the config (self "left", partner "right")
  fixtures/match/truth.csv     left_id,right_id,same,category

`same` is 1 when both records were made from the same company, 0 otherwise, so the
labels are an equivalence by construction (checked again before writing). Each case
draws fresh core names, domains and tax ids, so cases never share a key by accident;
a case shares a key only where its category says so. Categories:

  positives       same_domain_variant, same_inn, inn_zero_lost, inn_with_kpp,
                  name_country_only, name_city, idn_punycode, subdomain,
                  legal_form_variant, quote_variant, yo_e, no_country_same
  hard negatives  same_name_diff_inn, same_name_diff_city, group_same_website_diff_inn,
                  free_mail_shared, lookalike_domain, same_name_diff_country,
                  person_same_name, first_word_only, platform_shared
  policy          no_country_diff (a record without country vs a namesake with one: a
                  different company; scored, but not a hard negative)

no_country_same / no_country_diff measure what a name link may do with a record that has no
country. Half of no_country_same carry the same city on both sides, half carry no city on the
country-less side; half of no_country_diff carry no city, half their own (different) city. So
"never link without country" misses all of no_country_same, "a missing country matches any"
falsely matches the city-less half of no_country_diff, and "a missing country needs an equal
city" misses the city-less half of no_country_same.

Run by developers only, never by `make test`:

    python3 tools/make_match.py [--check]

--check regenerates into memory and fails if a file on disk differs.
"""

import csv
import io
import json
import os
import random
import sys

SEED = 20250214
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "match")

# Pairs per category.
COUNTS = {
    "same_domain_variant": 300,
    "same_inn": 280,
    "inn_zero_lost": 120,
    "inn_with_kpp": 150,
    "name_country_only": 200,
    "name_city": 200,
    "idn_punycode": 100,
    "subdomain": 120,
    "legal_form_variant": 200,
    "quote_variant": 150,
    "yo_e": 100,
    "no_country_same": 60,
    "same_name_diff_inn": 150,
    "same_name_diff_city": 150,
    "group_same_website_diff_inn": 150,
    "free_mail_shared": 120,
    "lookalike_domain": 120,
    "same_name_diff_country": 120,
    "person_same_name": 120,
    "first_word_only": 120,
    "platform_shared": 80,
    "no_country_diff": 60,
}

# ---- vocabulary --------------------------------------------------------------

RU_ROOTS = """Ромашка Вега Гранит Альфа Сигма Север Восток Урал Сибирь Волга Кама Нева Алтай
Байкал Енисей Орион Меридиан Горизонт Вектор Импульс Прогресс Эталон Спектр Квант Атлант
Титан Феникс Пегас Зенит Полюс Магистраль Кристалл Рубин Изумруд Сапфир Янтарь Малахит
Кедр Лотос Радуга Парус Маяк Штурман Фрегат Галактика Стрела Сокол Беркут Ирбис Тайга
Ладога Онега Печора Ангара Аврора Континент Интеграл Сфера Вертикаль Основа Опора Гарант
Доверие Успех Держава Агат Арсенал Витязь Гелиос Дельта Омега Лидер""".split()
RU_YO_ROOTS = """Берёзка Полёт Клён Звёздный Зелёный-Сад Шёлк Тёплый-Дом Лёгкий-Шаг Ёлочка
Сёмга Чёрный-Жемчуг Зёрнышко Самолёт Пчёлка Мёд-Урала""".split()
RU_SUFFIXES = """Строй Трейд Логистик Снаб Сервис Техно Пром Агро Медиа Софт Инвест Консалт
Мед Фарм Энерго Транс Авто Маш Хим Лес Металл Нефть Телеком Систем Ресурс Проект Дизайн
Девелопмент Инжиниринг Маркет Экспорт Холод Электро Сталь Био""".split()
RU_LONG_SUFFIXES = {"Девелопмент", "Инжиниринг", "Консалт", "Маркет", "Экспорт", "Систем"}
GROUP_SECTORS = ["Логистика", "Недвижимость", "Ритейл", "Производство", "Финанс", "Агрохолдинг"]

EN_A = """Acme Keystone Lumen Zephyr Summit Pinnacle Crescent Beacon Cobalt Falcon Vertex Quantum
Orbit Helix Atlas Nova Polaris Sterling Evergreen Ironwood Redwood Silverline Bluewater
Northgate Harbor Oakridge Brightpath Clearview Stonebridge Westbrook Greenfield Riverside
Maple Vanguard Catalyst Insight Paragon Triton Everest Alpine Granite Lighthouse Copperleaf
Fairway Highland Bluebird""".split()
EN_B = """Robotics Trading Logistics Analytics Systems Textiles Software Consulting Labs Foods
Pharma Capital Media Networks Solutions Dynamics Medical Holdings Ventures Energy Materials
Instruments Security Devices Interactive Studios Health Outdoor Aerospace Biotech Data
Freight Packaging""".split()
DE_A = """Alpen Hartmann Werner Braun Nordwind Becker Schäfer Krüger Hoffmann Richter Lorenz
Bergmann Falke Rhein Elbe Donau Schwarzwald Sonnen Adler Weber Neumann Zimmermann""".split()
DE_B = """Maschinenbau Kunststoff Elektrotechnik Medizintechnik Logistik Energie Systeme Bau
Handel Feinmechanik Automation Werkzeugbau Antriebstechnik Verpackung""".split()

SURNAMES = """Иванов Петров Смирнов Кузнецов Попов Соколов Лебедев Козлов Новиков Морозов Волков
Васильев Зайцев Павлов Голубев Виноградов Богданов Фёдоров Михайлов Беляев Тарасов Белов
Комаров Орлов Киселёв Макаров Андреев Ковалёв Ильин Гусев Титов Кузьмин Кудрявцев Баранов
Куликов Алексеев Степанов Яковлев Сорокин Сергеев Романов Захаров Борисов Королёв""".split()
FIRST_NAMES = """Иван Игорь Илья Андрей Алексей Артём Сергей Станислав Дмитрий Денис Михаил Максим
Николай Никита Павел Пётр Олег Роман Виктор Владимир""".split()
PATRONYMICS = """Иванович Игоревич Ильич Андреевич Алексеевич Сергеевич Дмитриевич Денисович
Михайлович Максимович Николаевич Павлович Петрович Олегович Романович Викторович
Владимирович""".split()

# Russian cities with the region code an INN issued there starts with.
RU_CITIES = [("Москва", "77"), ("Санкт-Петербург", "78"), ("Казань", "16"),
             ("Новосибирск", "54"), ("Екатеринбург", "66"), ("Нижний Новгород", "52"),
             ("Самара", "63"), ("Краснодар", "23"), ("Ростов-на-Дону", "61"), ("Пермь", "59"),
             ("Челябинск", "74"), ("Воронеж", "36")]
# Regions 01-09: INNs that lose their leading zero in a spreadsheet.
RU_ZERO_CITIES = [("Майкоп", "01"), ("Уфа", "02"), ("Улан-Удэ", "03"), ("Горно-Алтайск", "04"),
                  ("Махачкала", "05"), ("Магас", "06"), ("Нальчик", "07"), ("Элиста", "08"),
                  ("Черкесск", "09")]
CITIES = {
    "KZ": ["Алматы", "Астана", "Шымкент", "Караганда"],
    "BY": ["Минск", "Гомель", "Брест", "Гродно"],
    "DE": ["Berlin", "München", "Hamburg", "Köln", "Frankfurt am Main", "Stuttgart"],
    "GB": ["London", "Manchester", "Bristol", "Leeds", "Edinburgh"],
    "US": ["New York", "Boston", "Seattle", "Austin", "Chicago", "Denver"],
}
TLD = {"RU": ".ru", "KZ": ".kz", "BY": ".by", "DE": ".de", "GB": ".co.uk", "US": ".com"}
COUNTRY_SPELLINGS = {
    "RU": ["RU"] * 6 + ["Россия", "Russia", "РФ", "ru"],
    "KZ": ["KZ"] * 4 + ["Казахстан", "Kazakhstan"],
    "BY": ["BY"] * 4 + ["Беларусь", "Belarus"],
    "DE": ["DE"] * 5 + ["Germany", "Deutschland"],
    "GB": ["GB"] * 5 + ["UK", "United Kingdom"],
    "US": ["US"] * 5 + ["USA", "United States"],
}

RU_FULL = {
    "ООО": "Общество с ограниченной ответственностью",
    "АО": "Акционерное общество",
    "ПАО": "Публичное акционерное общество",
    "ЗАО": "Закрытое акционерное общество",
    "ТОО": "Товарищество с ограниченной ответственностью",
}
RU_FORMS = {"RU": ["ООО"] * 8 + ["АО", "ПАО", "ЗАО"], "KZ": ["ТОО"], "BY": ["ООО"]}
EN_FORMS = {"US": ["LLC", "Inc.", "Corp."], "GB": ["Ltd", "Limited", "PLC"], "DE": ["GmbH", "AG"]}
EN_FULL = {"Inc.": "Incorporated", "Corp.": "Corporation", "Ltd": "Limited", "LLC": "L.L.C."}

FREE_MAIL = ["gmail.com", "mail.ru", "yandex.ru", "bk.ru", "list.ru", "inbox.ru", "outlook.com"]
PLATFORMS = ["{}.tilda.ws", "{}.wixsite.com/site", "vk.com/{}", "t.me/{}", "{}.github.io",
             "facebook.com/{}", "instagram.com/{}", "sites.google.com/view/{}"]

TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n",
                     "o", "p", "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y",
                     "", "e", "yu", "ya"]))

INN10_W = [2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_W1 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_W2 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]


def check_digit(digits, weights):
    return str(sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10)


def inn_valid(s):
    if len(s) == 10:
        return check_digit(s[:9], INN10_W) == s[9]
    if len(s) == 12:
        return (check_digit(s[:10], INN12_W1) == s[10]
                and check_digit(s[:11], INN12_W2) == s[11])
    return False


def translit(text):
    return "".join(TRANSLIT.get(ch, ch) for ch in text.lower())


# ---- the generator -----------------------------------------------------------

class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.uid = 0
        self.inns = set()
        self.domains = set()
        self.left = []
        self.right = []
        self.pairs = []
        r = self.rng
        self.ru_cores = [self.ru_join(a, b) for a in RU_ROOTS for b in RU_SUFFIXES]
        self.ru_single = list(RU_ROOTS)
        self.yo_cores = [self.ru_join(a, b) for a in RU_YO_ROOTS for b in RU_SUFFIXES]
        self.yo_cores += [a.replace("-", " ") for a in RU_YO_ROOTS]
        self.en_cores = [a + " " + b for a in EN_A for b in EN_B]
        self.de_cores = [a + " " + b for a in DE_A for b in DE_B]
        for pool in (self.ru_cores, self.ru_single, self.yo_cores, self.en_cores, self.de_cores):
            r.shuffle(pool)
        self.persons = [(s, f, p) for s in SURNAMES for f in FIRST_NAMES for p in PATRONYMICS]
        r.shuffle(self.persons)

    @staticmethod
    def ru_join(a, b):
        a = a.replace("-", " ")
        return a + " " + b if b in RU_LONG_SUFFIXES else a + "-" + b

    def take(self, pool):
        if not pool:
            raise SystemExit("make_match: a name pool ran out; add words or lower COUNTS")
        return pool.pop()

    def take_where(self, pool, pred):
        for i in range(len(pool) - 1, -1, -1):
            if pred(pool[i]):
                return pool.pop(i)
        raise SystemExit("make_match: no name left in a pool for a constrained case")

    # -- keys --

    def inn(self, region, digits=10):
        r = self.rng
        while True:
            body = region + "%02d" % r.randint(1, 99) + "".join(
                str(r.randint(0, 9)) for _ in range(5 if digits == 10 else 6))
            if digits == 10:
                s = body + check_digit(body, INN10_W)
            else:
                s = body + check_digit(body, INN12_W1)
                s += check_digit(s, INN12_W2)
            if s not in self.inns and inn_valid(s):
                self.inns.add(s)
                return s

    def kpp(self, inn, branch=False):
        r = self.rng
        office = inn[:4] if not branch else inn[:2] + "%02d" % r.randint(1, 99)
        return office + ("43" if branch else "01") + "%03d" % r.randint(1, 9)

    def domain_for(self, core, country, style=None):
        r = self.rng
        base = translit(core) if any("а" <= ch <= "я" for ch in core.lower()) else core.lower()
        base = base.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("ß", "ss")
        words = base.replace("-", " ").split()
        styles = ["-".join(words), "".join(words)]
        if style is not None:
            styles = [styles[style]]
        tlds = [TLD[country]] * 4 + [".com"] if country in ("RU", "DE", "KZ", "BY") else [TLD[country]]
        for s in styles:
            for _ in range(4):
                d = s + r.choice(tlds)
                if d not in self.domains:
                    self.domains.add(d)
                    return d
        raise SystemExit("make_match: no unique domain for " + core)

    # -- companies --

    def company(self, kind, country=None, core=None, city=None, inn=True, domain=False,
                zero_region=False, person=None):
        r = self.rng
        self.uid += 1
        c = {"uid": self.uid, "kind": kind, "inn": "", "kpp": "", "domain": "", "person": person}
        if kind == "ru":
            c["country"] = country or r.choice(["RU"] * 8 + ["KZ", "BY"])
            c["core"] = core or self.take(self.ru_cores)
            if c["country"] == "RU":
                c["city"], region = r.choice(RU_ZERO_CITIES if zero_region else RU_CITIES)
                if inn:
                    c["inn"] = self.inn(region, 12 if person else 10)
                    c["kpp"] = "" if person else self.kpp(c["inn"])
            else:
                c["city"] = r.choice(CITIES[c["country"]])
            c["form"] = "ИП" if person else r.choice(RU_FORMS[c["country"]])
        else:
            c["country"] = country or r.choice(["US", "GB", "DE"])
            pool = self.de_cores if c["country"] == "DE" else self.en_cores
            c["core"] = core or self.take(pool)
            c["city"] = r.choice(CITIES[c["country"]])
            c["form"] = r.choice(EN_FORMS[c["country"]])
        if city:
            c["city"] = city
        if domain:
            c["domain"] = self.domain_for(c["core"], c["country"])
        return c

    def ru_company(self, **kw):
        return self.company("ru", **kw)

    def intl_company(self, **kw):
        return self.company("intl", **kw)

    # -- spellings --

    def name(self, c, style=None):
        r = self.rng
        if c["person"]:
            return self.person_name(c, style)
        core, form = c["core"], c["form"]
        if c["kind"] == "ru":
            full = RU_FULL.get(form, form)
            styles = [f"{form} «{core}»", f'{form} "{core}"', f"{core} {form}",
                      f"{full} «{core}»", f"{form} {core}", f"{form} „{core}“",
                      f"{core}", f"{core}, {form}", f'{form} "{core.upper()}"',
                      f'{full.upper()} "{core.upper()}"']
            weights = [6, 5, 3, 2, 3, 1, 2, 1, 1, 1]
        else:
            full = EN_FULL.get(form, form)
            styles = [f"{core} {form}", f"{core}, {form}", f"{core} {full}", f"{core}",
                      f"{core.upper()} {form.upper()}", f"{core}  {form}", f"{core.lower()}"]
            weights = [6, 3, 2, 3, 1, 1, 1]
        if style is not None:
            return styles[style]
        return r.choices(styles, weights)[0]

    def person_name(self, c, style):
        s, f, p = c["person"]
        styles = [f"ИП {s} {f} {p}", f"ИП {s} {f[0]}.{p[0]}.", f"Индивидуальный предприниматель {s} {f} {p}",
                  f"{s} {f} {p} ИП", f"ИП {s} {f[0]}. {p[0]}.", f"ИП {s}"]
        if style is None:
            style = self.rng.choice([0, 0, 1, 2, 3, 4])
        return styles[style]

    def country(self, c):
        return self.rng.choice(COUNTRY_SPELLINGS[c["country"]])

    def city(self, c):
        r = self.rng
        city = c["city"]
        if c["kind"] == "ru" and c["country"] == "RU":
            return r.choice([city] * 5 + ["г. " + city, "г " + city, city.upper()])
        return r.choice([city] * 5 + [city.upper()])

    def site(self, domain, style=None):
        r = self.rng
        ru = domain.endswith((".ru", ".рф", ".xn--p1ai", ".kz", ".by"))
        boxes = ["info", "sales", "office", "contact"] + (["zakaz", "buh", "mail"] if ru else ["hello"])
        styles = [domain, "www." + domain, "https://" + domain, "https://www." + domain + "/",
                  "http://" + domain + "/contacts", "HTTPS://WWW." + domain.upper(),
                  r.choice(boxes) + "@" + domain, "mailto:" + r.choice(boxes) + "@" + domain,
                  " " + domain + ". ", "https://www." + domain + ":443/about?lang=ru",
                  domain + ",", "www." + domain + "/"]
        if style is not None:
            return styles[style]
        return r.choices(styles, [5, 5, 3, 4, 2, 1, 4, 1, 1, 1, 1, 2])[0]

    def taxid(self, c, with_kpp=False):
        r = self.rng
        inn = c["inn"]
        if with_kpp:
            kpp = c["branch_kpp"] if c.get("branch_kpp") else c["kpp"]
            return r.choice([f"{inn}/{kpp}", f"{inn} / {kpp}", f"ИНН {inn} КПП {kpp}",
                             f"{inn}, КПП {kpp}", f"ИНН/КПП {inn}/{kpp}", f"{inn}\\{kpp}"])
        return r.choice([inn] * 8 + [f"ИНН {inn}", f" {inn} "])

    # -- records and pairs --

    def record(self, org, c, name=None, domain=None, tax=None, country=None, city=None):
        """A record of company `c` in `org`. Each field: None draws a spelling, "" leaves it empty."""
        r = self.rng
        rec = {
            "uid": c["uid"],
            "name": name if name is not None else self.name(c),
            "domain": domain if domain is not None else (self.site(c["domain"]) if c["domain"] else ""),
            "tax_id": tax if tax is not None else (self.taxid(c) if c["inn"] else ""),
            "country": country if country is not None else self.country(c),
            "status": r.choices(["customer", "prospect", "opportunity", "Customer"], [5, 4, 2, 1])[0],
            "city": city if city is not None else self.city(c),
        }
        (self.left if org == "left" else self.right).append(rec)
        return rec

    def L(self, c, **kw):
        return self.record("left", c, **kw)

    def R(self, c, **kw):
        return self.record("right", c, **kw)

    def pair(self, left, right, category):
        self.pairs.append((left, right, int(left["uid"] == right["uid"]), category))


# ---- cases -------------------------------------------------------------------

def two_styles(g, n, avoid=()):
    a, b = g.rng.sample([i for i in range(n) if i not in avoid], 2)
    return a, b


def case_same_domain_variant(g):
    r = g.rng
    if r.random() < 0.45:
        c = g.ru_company(country="RU", domain=True)
        left = g.L(c, tax=g.taxid(c) if r.random() < 0.5 else "")
        right = g.R(c, tax="", name=r.choice([None, c["core"]]))
    else:
        c = g.intl_company(domain=True)
        left = g.L(c, city=r.choice([None, ""]))
        right = g.R(c, country=r.choice([None, ""]), city=r.choice([None, ""]))
    g.pair(left, right, "same_domain_variant")


def case_same_inn(g):
    r = g.rng
    person = g.persons.pop() if r.random() < 0.2 else None
    c = g.ru_company(country="RU", person=person)
    if person:
        a, b = r.sample([0, 1, 2, 3, 4], 2)
        ln, rn = g.person_name(c, a), g.person_name(c, b)
    else:
        a, b = two_styles(g, 10)
        ln, rn = g.name(c, a), g.name(c, b)
        if r.random() < 0.2:
            rn = translit(c["core"]).title() + " " + r.choice(["LLC", "Ltd", "OOO"])
    left = g.L(c, name=ln)
    right = g.R(c, name=rn, city=r.choice([None, ""]), country=r.choice([None, ""]))
    g.pair(left, right, "same_inn")


def case_inn_zero_lost(g):
    r = g.rng
    person = g.persons.pop() if r.random() < 0.25 else None
    c = g.ru_company(country="RU", zero_region=True, person=person)
    lost = c["inn"].lstrip("0")
    full = g.taxid(c)
    left_tax, right_tax = (lost, full) if r.random() < 0.5 else (full, lost)
    if r.random() < 0.2:
        left_tax = right_tax = lost
    left = g.L(c, tax=left_tax)
    right = g.R(c, tax=right_tax, name=g.name(c) if not person else g.person_name(c, 1))
    g.pair(left, right, "inn_zero_lost")


def case_inn_with_kpp(g):
    r = g.rng
    c = g.ru_company(country="RU")
    branch = r.random() < 0.5
    if branch:
        # A branch in another city: its own KPP, the parent's INN; one company here.
        c2 = dict(c, branch_kpp=g.kpp(c["inn"], branch=True))
        city, _ = r.choice([x for x in RU_CITIES if x[0] != c["city"]])
        left = g.L(c, tax=g.taxid(c, with_kpp=r.random() < 0.5))
        right = g.R(c2, tax=g.taxid(c2, with_kpp=True), city=city,
                    name=g.name(c) + r.choice([" (филиал)", ", филиал в г. " + city, ""]))
    else:
        left = g.L(c, tax=g.taxid(c, with_kpp=True))
        right = g.R(c, tax=g.taxid(c, with_kpp=r.random() < 0.3))
    g.pair(left, right, "inn_with_kpp")


def name_only_pair(g, c, category, cities, ln=None, rn=None):
    """Two records of `c` linked by name alone; `cities`: both, one or none carry a city."""
    r = g.rng
    lcity = g.city(c) if cities in ("both", "left") else ""
    rcity = g.city(c) if cities in ("both", "right") else ""
    tax_l = g.taxid(c) if c["inn"] and r.random() < 0.3 else ""
    left = g.L(c, name=ln, tax=tax_l, domain="", city=lcity)
    right = g.R(c, name=rn, tax="", domain="", city=rcity)
    g.pair(left, right, category)


def case_name_country_only(g):
    r = g.rng
    c = g.ru_company() if r.random() < 0.5 else g.intl_company()
    name_only_pair(g, c, "name_country_only", r.choice(["left", "right", "none"]))


def case_name_city(g):
    r = g.rng
    c = g.ru_company() if r.random() < 0.55 else g.intl_company()
    name_only_pair(g, c, "name_city", "both")


def case_idn_punycode(g):
    r = g.rng
    c = g.ru_company(country="RU", inn=False)
    cyr = c["core"].lower().replace(" ", "-") + ".рф"
    if cyr in g.domains:
        raise SystemExit("make_match: IDN domain taken: " + cyr)
    g.domains.add(cyr)
    puny = cyr.encode("idna").decode("ascii")
    cyr_spelled = r.choice([cyr, "https://" + cyr + "/", "www." + cyr, cyr.upper(),
                            "info@" + cyr])
    puny_spelled = r.choice([puny, "http://" + puny, "https://www." + puny + "/", "sales@" + puny])
    latin = translit(c["core"]).title() + " " + r.choice(["LLC", "OOO", "Ltd"])
    left = g.L(c, domain=cyr_spelled)
    right = g.R(c, domain=puny_spelled, name=r.choice([latin, None]), city=r.choice([None, ""]))
    g.pair(left, right, "idn_punycode")


def case_subdomain(g):
    r = g.rng
    c = g.ru_company(country="RU", inn=False, domain=True) if r.random() < 0.5 \
        else g.intl_company(domain=True)
    sub = r.choice(["shop", "spb", "msk", "portal", "lk", "en", "b2b", "crm"])
    left = g.L(c, domain=g.site(c["domain"], r.choice([0, 1, 3])))
    right = g.R(c, domain=r.choice(["", "https://"]) + sub + "." + c["domain"] + r.choice(["", "/"]),
                city=r.choice([None, ""]))
    g.pair(left, right, "subdomain")


def case_legal_form_variant(g):
    r = g.rng
    if r.random() < 0.55:
        c = g.ru_company(inn=False)
        a, b = r.sample([0, 2, 3, 6, 7], 2)
    else:
        c = g.intl_company()
        a, b = r.sample([0, 1, 2, 3], 2)
    name_only_pair(g, c, "legal_form_variant", r.choice(["both", "left", "right"]),
                   g.name(c, a), g.name(c, b))


def case_quote_variant(g):
    r = g.rng
    c = g.ru_company(inn=False)
    form, core = c["form"], c["core"]
    quoted = [f"{form} «{core}»", f'{form} "{core}"', f"{form} „{core}“", f"{form} “{core}”",
              f"{form} '{core}'", f"{form} {core}", f'{form} ""{core}""', f"{form} «{core}\""]
    ln, rn = r.sample(quoted, 2)
    name_only_pair(g, c, "quote_variant", r.choice(["both", "left", "none"]), ln, rn)


def case_yo_e(g):
    r = g.rng
    core = g.take(g.yo_cores)
    c = g.ru_company(country="RU", core=core, inn=False)
    e = dict(c, core=core.replace("ё", "е").replace("Ё", "Е"))
    ln, rn = g.name(c), g.name(e)
    if r.random() < 0.5:
        ln, rn = rn, ln
    name_only_pair(g, c, "yo_e", r.choice(["both", "left", "none"]), ln, rn)


def case_no_country_same(g):
    r = g.rng
    c = g.ru_company(inn=False) if r.random() < 0.5 else g.intl_company()
    both_city = r.random() < 0.5
    left = g.L(c, country="", tax="", domain="", city=g.city(c) if both_city else "")
    right = g.R(c, tax="", domain="")
    if r.random() < 0.5:  # the record without a country may sit on either side
        left["country"], right["country"] = right["country"], left["country"]
    g.pair(left, right, "no_country_same")


def case_no_country_diff(g):
    r = g.rng
    if r.random() < 0.5:
        a = g.ru_company(country="RU", inn=False)
        b = g.ru_company(country=r.choice(["KZ", "BY"]), core=a["core"])
    else:
        a = g.intl_company(country="GB")
        b = g.intl_company(country=r.choice(["US", "DE"]), core=a["core"])
    # Half carry their own city (never the namesake's): a city rule alone keeps those apart.
    left = g.L(a, country="", tax="", domain="", city=g.city(a) if r.random() < 0.5 else "")
    right = g.R(b, tax="", domain="")
    g.pair(left, right, "no_country_diff")


def case_same_name_diff_inn(g):
    r = g.rng
    a = g.ru_company(country="RU")
    b = g.ru_company(country="RU", core=a["core"], city=a["city"] if r.random() < 0.6 else None)
    b["form"] = a["form"]
    left = g.L(a)
    neg = g.R(b)
    g.pair(left, neg, "same_name_diff_inn")
    if r.random() < 0.5:  # the true one is in the partner's CRM too
        g.pair(left, g.R(a, domain=""), "same_inn")


def case_same_name_diff_city(g):
    r = g.rng
    ru = r.random() < 0.6
    a = g.ru_company(country="RU", inn=False) if ru else g.intl_company()
    other = [x for x, _ in RU_CITIES] if ru and a["country"] == "RU" else \
        (CITIES.get(a["country"]) or [x for x, _ in RU_CITIES])
    b = dict(a, uid=None, city=r.choice([x for x in other if x != a["city"]]))
    g.uid += 1
    b["uid"] = g.uid
    left = g.L(a, tax="", domain="", city=g.city(a))
    g.pair(left, g.R(b, tax="", domain="", city=g.city(b)), "same_name_diff_city")
    if r.random() < 0.4:
        g.pair(left, g.R(a, tax="", domain="", city=g.city(a)), "name_city")


def case_group_same_website(g):
    r = g.rng
    brand = g.take(g.ru_single) if g.ru_single and r.random() < 0.3 else g.take(g.ru_cores)
    site = g.domain_for(brand + " групп", "RU")
    sectors = r.sample(GROUP_SECTORS, 3)
    members = []
    for s in sectors:
        m = g.ru_company(country="RU", core=brand + " " + s)
        m["domain"] = site
        members.append(m)
    left = g.L(members[0])
    g.pair(left, g.R(members[1]), "group_same_website_diff_inn")
    g.pair(left, g.R(members[2]), "group_same_website_diff_inn")
    if r.random() < 0.3:
        g.pair(left, g.R(members[0]), "same_inn")


def case_free_mail(g):
    r = g.rng
    a = g.ru_company(country="RU", inn=r.random() < 0.5) if r.random() < 0.6 else g.intl_company()
    b = g.ru_company(country="RU", inn=r.random() < 0.5) if r.random() < 0.6 else g.intl_company()
    box = r.choice(FREE_MAIL if a["kind"] == "ru" else ["gmail.com", "outlook.com"])
    if r.random() < 0.3:
        # An outsourced bookkeeper's address on both (a common CRM entry).
        addr = r.choice(["buh", "accounting", "office"]) + str(r.randint(1, 999)) + "@" + box
        la = lb = addr
    else:
        la = translit(a["core"]).replace(" ", ".").lower() + str(r.randint(1, 99)) + "@" + box
        lb = translit(b["core"]).replace(" ", "_").lower() + "@" + box
    g.pair(g.L(a, domain=la), g.R(b, domain=lb), "free_mail_shared")


def case_lookalike(g):
    r = g.rng
    if r.random() < 0.5:
        core = g.take(g.ru_single) if g.ru_single and r.random() < 0.5 else g.take(g.ru_cores)
        a = g.ru_company(country="RU", core=core)
        b = g.ru_company(country="RU", core=core,
                         city=r.choice([x for x, _ in RU_CITIES if x != a["city"]]))
        b["form"] = a["form"]
        base = translit(core).replace(" ", "-")
        a["domain"] = base + ".ru"
        city_tag = {"Москва": "msk", "Санкт-Петербург": "spb"}.get(b["city"], translit(b["city"]).split("-")[0].split()[0])
        b["domain"] = base + "-" + city_tag + ".ru"
    else:
        a = g.intl_company(country="US")
        b = g.intl_company(country="GB", core=a["core"])
        words = a["core"].lower().split()
        a["domain"] = "-".join(words) + ".com"
        b["domain"] = "".join(words) + r.choice([".com", ".co.uk"])
    for d in (a["domain"], b["domain"]):
        if d in g.domains:
            raise SystemExit("make_match: look-alike domain taken: " + d)
        g.domains.add(d)
    left = g.L(a)
    g.pair(left, g.R(b), "lookalike_domain")


def case_same_name_diff_country(g):
    r = g.rng
    if r.random() < 0.5:
        a = g.ru_company(country="RU", inn=r.random() < 0.3)
        b = g.ru_company(country=r.choice(["KZ", "BY"]), core=a["core"])
    else:
        a = g.intl_company()
        b = g.intl_company(country=r.choice([x for x in ("US", "GB", "DE") if x != a["country"]]),
                           core=a["core"])
    no_city = r.random() < 0.4
    left = g.L(a, domain="", city="" if no_city else None)
    g.pair(left, g.R(b, domain="", tax="", city="" if no_city else None), "same_name_diff_country")


def case_person_same_name(g):
    r = g.rng
    s, f, p = g.persons.pop()
    kind = r.random()
    a = g.ru_company(country="RU", person=(s, f, p), inn=r.random() < 0.7)
    if kind < 0.4:
        # Namesakes: same full name, another person.
        b = g.ru_company(country="RU", person=(s, f, p), city=a["city"] if r.random() < 0.7 else None)
        g.pair(g.L(a), g.R(b, name=g.person_name(b, r.choice([0, 2, 3]))), "person_same_name")
    elif kind < 0.75:
        # Same surname and initials, other first name and patronymic.
        f2 = r.choice([x for x in FIRST_NAMES if x[0] == f[0] and x != f] or [f])
        p2 = r.choice([x for x in PATRONYMICS if x[0] == p[0] and x != p] or [p])
        b = g.ru_company(country="RU", person=(s, f2, p2), city=a["city"])
        g.pair(g.L(a, name=g.person_name(a, 1)), g.R(b, name=g.person_name(b, 0)),
               "person_same_name")
    else:
        # An ИП and a company with the same name.
        b = g.ru_company(country="RU", core=s, city=a["city"], inn=r.random() < 0.5)
        b["form"] = "ООО"
        g.pair(g.L(a, name=g.person_name(a, 5), tax=""), g.R(b, name=g.name(b, 0)),
               "person_same_name")


def case_first_word_only(g):
    r = g.rng
    if r.random() < 0.5:
        a = g.ru_company(inn=False)
        root = a["core"].split("-")[0].split(" ")[0]
        b_core = g.take_where(g.ru_cores, lambda x: x.split("-")[0].split(" ")[0] == root)
    else:
        a = g.intl_company()
        first = a["core"].split()[0]
        pool = g.de_cores if a["country"] == "DE" else g.en_cores
        b_core = g.take_where(pool, lambda x: x.split()[0] == first)
    b = g.company(a["kind"], country=a["country"], core=b_core, city=a["city"], inn=False)
    g.pair(g.L(a, domain=""), g.R(b, domain=""), "first_word_only")


def case_platform_shared(g):
    r = g.rng
    tpl = r.choice(PLATFORMS)
    a = g.ru_company(inn=False) if r.random() < 0.5 else g.intl_company()
    b = g.ru_company(inn=False) if r.random() < 0.5 else g.intl_company()
    ha = translit(a["core"]).replace(" ", "").replace("-", "").lower()
    hb = translit(b["core"]).replace(" ", "").replace("-", "").lower()
    g.pair(g.L(a, domain="https://" + tpl.format(ha)), g.R(b, domain=tpl.format(hb)),
           "platform_shared")


CASES = {
    "same_domain_variant": case_same_domain_variant,
    "same_inn": case_same_inn,
    "inn_zero_lost": case_inn_zero_lost,
    "inn_with_kpp": case_inn_with_kpp,
    "name_country_only": case_name_country_only,
    "name_city": case_name_city,
    "idn_punycode": case_idn_punycode,
    "subdomain": case_subdomain,
    "legal_form_variant": case_legal_form_variant,
    "quote_variant": case_quote_variant,
    "yo_e": case_yo_e,
    "no_country_same": case_no_country_same,
    "same_name_diff_inn": case_same_name_diff_inn,
    "same_name_diff_city": case_same_name_diff_city,
    "group_same_website_diff_inn": case_group_same_website,
    "free_mail_shared": case_free_mail,
    "lookalike_domain": case_lookalike,
    "same_name_diff_country": case_same_name_diff_country,
    "person_same_name": case_person_same_name,
    "first_word_only": case_first_word_only,
    "platform_shared": case_platform_shared,
    "no_country_diff": case_no_country_diff,
}


def generate():
    g = Gen(SEED)
    # Cases that need a constrained draw (first_word_only) go first, so the pools still
    # hold names with the same first word.
    order = ["first_word_only"] + [k for k in COUNTS if k != "first_word_only"]
    for cat in order:
        # Cases may add pairs of other categories; count only their own.
        while sum(1 for p in g.pairs if p[3] == cat) < COUNTS[cat]:
            CASES[cat](g)
    check_consistent(g.pairs)
    return g


def check_consistent(pairs):
    """same=1 must be an equivalence: no 0 pair inside a group joined by 1 pairs."""
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for left, right, same, cat in pairs:
        if same:
            parent[find(id(left))] = find(id(right))
    for left, right, same, cat in pairs:
        if not same and find(id(left)) == find(id(right)):
            raise SystemExit("make_match: truth is inconsistent in " + cat)
        if same != (left["uid"] == right["uid"]):
            raise SystemExit("make_match: label disagrees with the generator in " + cat)


# ---- output ------------------------------------------------------------------

FIELDS = ["id", "name", "domain", "tax_id", "country", "status", "city"]


def render(g):
    r = random.Random(SEED + 1)
    files = {}
    for org, recs, prefix in (("left", g.left, "L"), ("right", g.right, "R")):
        order = list(recs)
        r.shuffle(order)
        for i, rec in enumerate(order):
            rec["id"] = "%s%05d" % (prefix, i + 1)
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(FIELDS)
        for rec in order:
            w.writerow([rec[f] for f in FIELDS])
        files[org + ".csv"] = out.getvalue()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["left_id", "right_id", "same", "category"])
    rows = sorted({(a["id"], b["id"], s, c) for a, b, s, c in g.pairs})
    seen = {}
    for a, b, s, c in rows:
        if (a, b) in seen:
            raise SystemExit("make_match: pair %s,%s listed twice" % (a, b))
        seen[(a, b)] = s
        w.writerow([a, b, s, c])
    files["truth.csv"] = out.getvalue()
    cfg = {
        "self": "left",
        "store": "dir:./acctmap-data",
        "orgs": [
            {"id": "left", "name": "Left", "sources": [{"type": "csv", "path": "left.csv"}]},
            {"id": "right", "name": "Right", "sources": [{"type": "csv", "path": "right.csv"}]},
        ],
    }
    files["acctmap.json"] = json.dumps(cfg, indent=2, ensure_ascii=False) + "\n"
    return files, rows


def summary(rows, g):
    by_id = {rec["id"]: rec for rec in g.left + g.right}
    cats = {}
    for a, b, s, c in rows:
        cats[c] = cats.get(c, 0) + 1
    cyr = sum(1 for a, b, s, c in rows
              if any("\u0400" <= ch <= "\u04ff" for ch in by_id[a]["name"] + by_id[b]["name"]))
    lines = ["%-30s %5d" % (c, n) for c, n in sorted(cats.items())]
    lines.append("pairs %d (same=1: %d), records left %d, right %d, Cyrillic %.1f%%" % (
        len(rows), sum(s for _, _, s, _ in rows), len(g.left), len(g.right),
        100.0 * cyr / len(rows)))
    return "\n".join(lines)


def main():
    check = "--check" in sys.argv[1:]
    g = generate()
    files, rows = render(g)
    status = 0
    for name, text in sorted(files.items()):
        path = os.path.join(ROOT, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                print("make_match: %s differs; run tools/make_match.py" % path, file=sys.stderr)
                status = 1
        else:
            os.makedirs(ROOT, exist_ok=True)
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
    print(summary(rows, g))
    return status


if __name__ == "__main__":
    sys.exit(main())
