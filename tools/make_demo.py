#!/usr/bin/env python3
"""Regenerate fixtures/demo/: the bundled demo that `make demo` runs.

Builds a seeded universe of companies, gives each org (the vendor "acme" and
three partners) CSV records drawn from it with the variations real CRM exports
have, and writes:

  fixtures/demo/acctmap.json        the config
  fixtures/demo/data/<org>.csv      one export per org
  fixtures/demo/expected.json       the matrices `acctmap matrix --json` must print
                                    (without "run"), plus rows the reader must reject
  fixtures/demo/expected_pairs.csv  every matched (partner, our_id, their_id, matched_by):
                                    the strongest key the two records share directly
                                    (tax, domain, name+city when both name one city,
                                    name), or chain when they are linked through others

The expected results are not taken from the generator's intentions: the files
are read back from disk and matched with a model of the engine's rules v2:
tax keys (an INN, for Russian or country-less records), domain keys and name
keys (core name | country); linked in three passes, tax then domain then name,
each key joining the components of its records all at once or not at all: not
across two INNs, and by name never a sole trader (ИП), never two components
with websites of their own, never across two cities (a name whose records name
several cities is split by city, dropping those with none). The model is run
under every reading of the rules the documentation leaves open (punctuation in
names dropped or turned into a space; full English country names understood or
not; the "ИП " prefix looked for before or after case folding; "г."/"город"
dropped from a city before or after its punctuation) and with the keys of each
pass taken in three orders, and the script fails unless all agree and every
match is the company the generator meant. Run by developers only, never by
`make test`:

    python3 tools/make_demo.py [--check]

--check regenerates into memory and fails if a file on disk differs.
"""

import csv
import io
import json
import os
import random
import re
import sys
import unicodedata

SEED = 20240611
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "demo")

POPS = ["customers", "prospects", "opportunities"]
C, P, O = 0, 1, 2
SELF = "acme"
PARTNERS = ["globex", "romashka", "initech"]
ORGS = [SELF] + PARTNERS

# Accepted rows per file, and companies each partner shares with acme.
ROWS = {"acme": 400, "globex": 260, "romashka": 220, "initech": 240}
OVERLAP = {"globex": 60, "romashka": 50, "initech": 55}
# Cells left empty on purpose: (our population, their population).
EMPTY_CELLS = {"globex": set(), "romashka": {(O, P)}, "initech": {(O, C), (O, O)}}
COUNTRY_MIX = {
    "acme": {"RU": 40, "KZ": 4, "US": 22, "DE": 16, "GB": 18},
    "globex": {"RU": 12, "US": 38, "DE": 25, "GB": 25},
    "romashka": {"RU": 90, "KZ": 10},
    "initech": {"RU": 45, "KZ": 5, "US": 20, "DE": 15, "GB": 15},
}
UNIVERSE = {"RU": 520, "KZ": 50, "US": 230, "DE": 150, "GB": 170}

# ---- the matching rules (model of the engine's first version) ---------------

LEGAL_FORMS = {
    "ооо", "оао", "зао", "пао", "ао", "ип", "тоо", "llc", "inc", "ltd", "limited", "corp",
    "corporation", "co", "plc", "llp", "gmbh", "ag", "sa", "sarl", "sas", "bv", "nv", "ab",
    "oy", "pty",
}
LEGAL_PHRASE = ["общество", "с", "ограниченной", "ответственностью"]
FREEMAIL = {
    "gmail.com", "mail.ru", "yandex.ru", "bk.ru", "list.ru", "inbox.ru", "outlook.com",
    "hotmail.com", "yahoo.com", "vk.com", "facebook.com", "t.me", "instagram.com",
    "linkedin.com",
}
# The public suffixes the demo uses; anything else is a bug in this script.
SUFFIXES = {"com", "net", "io", "org", "ru", "de", "kz", "me", "xn--p1ai"}
SUFFIXES2 = {"co.uk"}
COUNTRY_CODES = {"RU", "US", "DE", "GB", "KZ"}
COUNTRY_NAMES = {"Russia": "RU", "Россия": "RU", "United States": "US", "Germany": "DE",
                 "United Kingdom": "GB", "Kazakhstan": "KZ"}
# Names DESIGN.md promises (normalize.h: "ru", "Russia", "Россия"); the others may not be known.
COUNTRY_NAMES_SURE = {"Russia", "Россия"}

INN10_W = [2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_W1 = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_W2 = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]


def inn_check(digits, weights):
    return sum(int(d) * w for d, w in zip(digits, weights)) % 11 % 10


def inn_valid(s):
    if not s.isdigit() or not s.isascii():
        return False
    if len(s) == 10:
        return inn_check(s[:9], INN10_W) == int(s[9])
    if len(s) == 12:
        return (inn_check(s[:10], INN12_W1) == int(s[10])
                and inn_check(s[:11], INN12_W2) == int(s[11]))
    return False


def country_code(value, names_known):
    v = value.strip()
    if v.upper() in COUNTRY_CODES:
        return v.upper()
    if v in COUNTRY_NAMES and (names_known or v in COUNTRY_NAMES_SURE):
        return COUNTRY_NAMES[v]
    return ""


def name_core(value, drop_punct):
    s = unicodedata.normalize("NFKC", value).casefold().replace("ё", "е")
    out = []
    for ch in s:
        if ch.isalnum():
            out.append(ch)
        elif ch.isspace() or not drop_punct:
            out.append(" ")
    tokens = "".join(out).split()
    kept, i = [], 0
    while i < len(tokens):
        if tokens[i:i + len(LEGAL_PHRASE)] == LEGAL_PHRASE:
            i += len(LEGAL_PHRASE)
            continue
        if tokens[i] not in LEGAL_FORMS:
            kept.append(tokens[i])
        i += 1
    return " ".join(kept)


def registrable_domain(value):
    v = value.strip()
    if not v:
        return ""
    if "@" in v:
        v = v.rsplit("@", 1)[1]
    low = v.lower()
    for scheme in ("https://", "http://"):
        if low.startswith(scheme):
            v = v[len(scheme):]
            break
    for stop in "/?#:":
        v = v.split(stop, 1)[0]
    labels = [lab.lower() for lab in v.rstrip(".").split(".")]
    labels = [lab if lab.isascii() else lab.encode("idna").decode("ascii") for lab in labels]
    if len(labels) >= 3 and ".".join(labels[-2:]) in SUFFIXES2:
        dom = ".".join(labels[-3:])
    elif len(labels) >= 2 and labels[-1] in SUFFIXES and ".".join(labels[-2:]) not in SUFFIXES2:
        dom = ".".join(labels[-2:])
    else:
        raise SystemExit("make_demo: no suffix rule for %r" % value)
    return "" if dom in FREEMAIL else dom


# The engine's Latin spelling of a Cyrillic core name (src/normalize.c), a name key too.
KEY_LATIN = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]))


def key_latin(core):
    """The Latin spelling of a core with Cyrillic letters; "" when it has none."""
    if not any(ch in KEY_LATIN for ch in core):
        return ""
    if any(not ch.isascii() and ch not in KEY_LATIN for ch in core):
        return ""
    return "".join(KEY_LATIN.get(ch, ch) for ch in core)


def record_keys(rec, drop_punct, names_known):
    """{kind: key text} of one record, strongest kind first."""
    keys = {}
    cc = country_code(rec["country"], names_known)
    tax = rec["tax_id"].strip()
    if tax:
        if not inn_valid(tax):
            raise SystemExit("make_demo: %s %s: INN %s fails its check digits"
                             % (rec["org"], rec["id"], tax))
        if cc in ("RU", ""):
            keys["tax"] = "tax:RU" + tax
    dom = registrable_domain(rec["domain"])
    if dom:
        keys["domain"] = "domain:" + dom
    core = name_core(rec["name"], drop_punct)
    if core:
        keys["name"] = "name:%s|%s" % (core, cc)
        latin = key_latin(core)
        if latin:
            keys["latin"] = "name:%s|%s" % (latin, cc)
    return keys


PERSON_PREFIXES = ["ИП ", "Индивидуальный предприниматель"]


def is_person(rec, fold):
    """An individual entrepreneur: a 12-digit INN, or a name that says so."""
    tax = rec["tax_id"].strip()
    if len(tax) == 12 and inn_valid(tax):
        return True
    name = rec["name"].strip()
    if fold:  # a reading that folds case (and width) before looking at the prefix
        name = unicodedata.normalize("NFKC", name).casefold()
        return any(name.startswith(p.casefold()) for p in PERSON_PREFIXES)
    return any(name.startswith(p) for p in PERSON_PREFIXES)


def city_norm(value, late):
    """The city as the name pass compares it; `late` strips "г."/"город" after punctuation."""
    s = unicodedata.normalize("NFKC", value).casefold().replace("ё", "е").strip()

    def strip_marks(s):
        for p in ("г.", "г ", "город"):
            if s.startswith(p):
                s = s[len(p):]
                break
        if s.endswith(" г"):
            s = s[:-2]
        return s

    if not late:
        s = strip_marks(s)
    s = " ".join("".join(ch if ch.isalnum() else " " for ch in s).split())
    if late:
        s = " ".join(strip_marks(s).split())
    return s


KIND_ORDER = ["tax", "domain", "name+city", "name", "chain"]
# Readings of the rules the engine's documentation leaves open: punctuation in names
# dropped or turned into a space; full English country names understood or not; the
# "ИП " prefix looked for before or after case folding; "г."/"город" stripped from a city
# before or after its punctuation. Each is (drop_punct, names_known, fold_person, city_late).
READINGS = [(d, n, f, c) for d in (False, True) for n in (True, False)
            for f in (False, True) for c in (False, True)]
BASE_READING = READINGS[0]
ORDERS = ["sorted", "reversed", "shuffled"]


class Facts:
    __slots__ = ("keys", "person", "city")

    def __init__(self, rec, reading):
        drop, names, fold, late = reading
        self.keys = record_keys(rec, drop, names)
        self.person = is_person(rec, fold)
        self.city = city_norm(rec["city"], late)


def link(recs, reading, order="sorted"):
    """Rules v2: entity (a root index) of each record, and the records' facts.

    Three passes (tax, domain, name); in each, the keys in a canonical order (or the
    reverse, or shuffled, to show the order inside a pass cannot matter).
    """
    facts = [Facts(r, reading) for r in recs]
    n = len(recs)
    parent = list(range(n))
    taxes = [{f.keys["tax"]} if "tax" in f.keys else set() for f in facts]
    has_dom = ["domain" in f.keys for f in facts]
    cities = [{f.city} if f.city else set() for f in facts]

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for kind in ("tax", "domain", "name"):
        holders = {}
        for i, f in enumerate(facts):
            # A name's Latin spelling is one more name key, in the same pass.
            for k in (kind, "latin") if kind == "name" else (kind,):
                if k in f.keys and i not in holders.get(f.keys[k], []):
                    holders.setdefault(f.keys[k], []).append(i)
        texts = sorted(holders)
        if order == "reversed":
            texts.reverse()
        elif order == "shuffled":
            random.Random(len(texts)).shuffle(texts)
        for text in texts:
            members = holders[text]
            if kind == "name":
                members = [i for i in members if not facts[i].person]
                named = sorted({facts[i].city for i in members if facts[i].city})
                if len(named) >= 2:
                    parts = [[i for i in members if facts[i].city == c] for c in named]
                else:
                    parts = [members]
            else:
                parts = [members]
            for part in parts:
                roots = sorted({find(i) for i in part})
                if len(roots) < 2:
                    continue
                if len(set().union(*(taxes[r] for r in roots))) >= 2:
                    continue
                if kind == "name":
                    if sum(has_dom[r] for r in roots) >= 2:
                        continue
                    if len(set().union(*(cities[r] for r in roots))) >= 2:
                        continue
                top = roots[0]
                for r in roots[1:]:
                    parent[r] = top
                    taxes[top] |= taxes[r]
                    has_dom[top] = has_dom[top] or has_dom[r]
                    cities[top] |= cities[r]
    return [find(i) for i in range(n)], facts


def pair_kind(a, b):
    """matched_by of two records of one entity: the strongest key they share directly."""
    for kind in ("tax", "domain"):
        if kind in a.keys and a.keys[kind] == b.keys.get(kind):
            return kind
    names_a = {a.keys[k] for k in ("name", "latin") if k in a.keys}
    names_b = {b.keys[k] for k in ("name", "latin") if k in b.keys}
    if names_a & names_b:
        if a.person or b.person:
            return None  # a shared name key of a person: whether it counts is not ruled
        return "name+city" if a.city and a.city == b.city else "name"
    return "chain"


# ---- the universe -------------------------------------------------------------

TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"]))


def translit(s):
    return "".join(TRANSLIT.get(ch, ch) for ch in s.lower())


RU_A = ["Ромашка", "Вектор", "Альфа", "Гранит", "Меридиан", "Орбита", "Сибирь", "Волга",
        "Байкал", "Каскад", "Лидер", "Прогресс", "Восток", "Зенит", "Импульс", "Квант",
        "Магистраль", "Нева", "Парус", "Радуга", "Спектр", "Титан", "Урал", "Феникс",
        "Эталон", "Янтарь", "Кедр", "Алмаз", "Атлант", "Горизонт", "Енисей", "Заря", "Искра",
        "Кристалл", "Ладога", "Мираж", "Пульсар", "Рубин", "Сатурн", "Тайга", "Фортуна",
        "Гелиос", "Вега", "Аврора", "Берёзка", "Сокол", "Полюс", "Онега", "Бирюза", "Держава"]
RU_B = ["Сервис", "Строй", "Торг", "Инвест", "Логистик", "Софт", "Технологии", "Трейд",
        "Агро", "Мед", "Энерго", "Консалт", "Девелопмент", "Телеком", "Систем", "Проект",
        "Маркет", "Фарм", "Авто", "Пласт"]
KZ_A = ["Алатау", "Тулпар", "Жетысу", "Сарыарка", "Иртыш", "Кайнар", "Арман", "Байтерек",
        "Каспий", "Шанырак", "Нур", "Есиль"]
KZ_B = ["Трейд", "Строй", "Логистик", "Агро", "Энерго", "Сервис", "Групп", "Инжиниринг"]
EN_A = ["Northwind", "Contoso", "Initrode", "Umbrella", "Acorn", "Brightline", "Cobalt",
        "Crescent", "Driftwood", "Evergreen", "Falcon", "Harbor", "Ironwood", "Juniper",
        "Keystone", "Lumen", "Maple", "Nimbus", "Oakridge", "Pinnacle", "Quartz", "Redwood",
        "Summit", "Tidewater", "Vertex", "Willow", "Zephyr", "Beacon", "Cedar", "Bluewater",
        "Silverline", "Copperfield", "Foxglove", "Hawthorn", "Larkspur", "Meadowbrook",
        "Northgate", "Orchard", "Riverbend", "Stonebridge"]
EN_B = ["Systems", "Labs", "Logistics", "Analytics", "Foods", "Capital", "Robotics",
        "Software", "Energy", "Health", "Media", "Networks", "Dynamics", "Textiles",
        "Automotive", "Retail", "Consulting", "Biotech", "Security", "Studios"]
DE_A = ["Hoffmann", "Becker", "Keller", "Schmidt", "Wagner", "Richter", "Bauer", "Krause",
        "Lehmann", "Braun", "Zimmermann", "Hartmann", "Lange", "Werner", "Schulz", "Vogel",
        "Nordlicht", "Alpen", "Rhein", "Elbe"]
DE_B = ["Maschinenbau", "Logistik", "Elektrotechnik", "Bau", "Systeme", "Medizintechnik",
        "Software", "Automation", "Antriebstechnik", "Kunststoff", "Werkzeuge", "Energie"]
RU_SURNAMES = ["Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Лебедев", "Козлов",
               "Новиков", "Морозов", "Волков", "Соловьёв", "Васильев", "Зайцев", "Павлов",
               "Семёнов", "Голубев", "Виноградов", "Богданов", "Воробьёв", "Фёдоров"]
RU_FIRST = {"m": ["Иван", "Алексей", "Сергей", "Дмитрий", "Андрей", "Михаил", "Павел", "Олег"],
            "f": ["Анна", "Елена", "Ольга", "Мария", "Татьяна", "Наталья", "Ирина", "Светлана"]}
RU_PATRONYMIC = {"m": ["Иванович", "Петрович", "Сергеевич", "Алексеевич", "Андреевич"],
                 "f": ["Ивановна", "Петровна", "Сергеевна", "Алексеевна", "Андреевна"]}
INN_REGIONS = ["77", "78", "50", "52", "66", "16", "54", "23", "61", "63", "74", "02"]

# Home cities, one per company; its records spell it in one of CITY_FORMS' ways.
CITIES = {
    "RU": ["Москва", "Москва", "Москва", "Санкт-Петербург", "Санкт-Петербург", "Казань",
           "Новосибирск", "Екатеринбург", "Нижний Новгород", "Самара", "Краснодар",
           "Ростов-на-Дону", "Пермь", "Уфа", "Воронеж", "Тюмень"],
    "KZ": ["Алматы", "Астана", "Шымкент", "Караганда"],
    "US": ["New York", "San Francisco", "Austin", "Chicago", "Boston", "Seattle"],
    "DE": ["Berlin", "München", "Hamburg", "Frankfurt am Main", "Stuttgart", "Köln"],
    "GB": ["London", "Manchester", "Leeds", "Bristol", "Edinburgh"],
}
# Spellings of one city that rules v2 reads as that city ("г." and "город" dropped).
CITY_FORMS = {"RU": ["{c}", "{c}", "{c}", "{c}", "г. {c}", "г.{c}", "город {c}", "{c} г"],
              "KZ": ["{c}", "{c}", "{c}", "г. {c}"],
              "US": ["{c}"], "DE": ["{c}"], "GB": ["{c}"]}
# Another city a record may name instead (a branch, or the city in English: another city
# to the rules).
OTHER_CITIES = {"RU": ["Moscow", "Saint Petersburg", "Казань", "Москва", "Самара"],
                "KZ": ["Almaty", "Астана"], "US": ["New York", "Boston"],
                "DE": ["Munich", "Berlin"], "GB": ["London", "Leeds"]}
OWNERS = {
    "acme": ["Alice Chen", "Dmitry Orlov", "Maria Sokolova", "James Carter", "Lena Fischer"],
    "globex": ["Hans Weber", "Emily Stone", "Raj Patel", "Sophie Martin"],
    "romashka": ["Анна Смирнова", "Игорь Волков", "Павел Зайцев", "Наталья Козлова"],
    "initech": ["Peter Gibbons", "Joanna Reyes", "Samir Haddad", "Karen Olsen"],
}
STATUS_WORDS = {
    "acme": ["customer", "prospect", "opportunity"],
    "globex": ["customer", "prospect", "opportunity"],
    "initech": ["customer", "prospect", "opportunity"],
    "romashka": ["клиент", "лид", "сделка"],
}
HEADER = ["id", "name", "domain", "tax_id", "country", "status", "city", "owner", "amount"]
ROMASHKA_HEADER = ["ID", "Название", "Сайт", "ИНН", "Страна", "Статус", "Город",
                   "Ответственный", "Сумма"]


class Universe:
    """Companies, with every core name, domain and INN unique across the demo."""

    def __init__(self, rng):
        self.rng = rng
        self.companies = []
        self.cores = set()    # letters-only core names: no two companies share one
        self.domains = set()  # registrable domains (A-label form)
        self.inns = set()

    def claim_core(self, display):
        letters = "".join(ch for ch in name_core(display, True) if ch.isalnum())
        if not letters or letters in self.cores:
            return False
        self.cores.add(letters)
        return True

    def claim_domain(self, host):
        dom = registrable_domain(host)
        if not dom or dom in self.domains:
            return False
        self.domains.add(dom)
        return True

    def new_inn(self, length):
        rng = self.rng
        while True:
            body = rng.choice(INN_REGIONS) + "".join(
                str(rng.randrange(10)) for _ in range(length - 4 if length == 12 else 7))
            if length == 10:
                inn = body + str(inn_check(body, INN10_W))
            else:
                c11 = inn_check(body, INN12_W1)
                c12 = inn_check(body + str(c11), INN12_W2)
                inn = body + str(c11) + str(c12)
            if inn not in self.inns:
                self.inns.add(inn)
                return inn

    def add(self, co):
        co["idx"] = len(self.companies)
        self.companies.append(co)
        return co

    def freemail(self, local):
        rng = self.rng
        box = rng.choice(["mail.ru", "yandex.ru", "gmail.com", "bk.ru", "list.ru", "inbox.ru"])
        return "%s%d@%s" % (local, rng.randrange(10, 99), box)

    def generic(self, country):
        rng = self.rng
        for _ in range(1000):
            co = {"country": country, "special": False, "alias": None, "inn": "",
                  "host": None, "idn": False, "city": rng.choice(CITIES[country])}
            if country == "RU" and rng.random() < 0.12:
                sex = rng.choice("mf")
                surname = rng.choice(RU_SURNAMES) + ("а" if sex == "f" else "")
                core = "%s %s %s" % (surname, rng.choice(RU_FIRST[sex]),
                                     rng.choice(RU_PATRONYMIC[sex]))
                co.update(kind="ip", lf="ИП", core=core)
            elif country in ("RU", "KZ"):
                a, b = (RU_A, RU_B) if country == "RU" else (KZ_A, KZ_B)
                first, second = rng.choice(a), rng.choice(b)
                style = rng.random()
                if style < 0.25:
                    core = first
                elif style < 0.5:
                    core = first + second.lower()
                elif style < 0.8:
                    core = first + "-" + second
                else:
                    core = first + " " + second
                if country == "KZ":
                    co.update(kind="too", lf="ТОО", core=core)
                else:
                    lf = rng.choices(["ООО", "АО", "ПАО"], [80, 15, 5])[0]
                    co.update(kind="ru", lf=lf, core=core)
            elif country == "DE":
                core = rng.choice(DE_A) + " " + rng.choice(DE_B)
                co.update(kind="de", lf=rng.choices(["GmbH", "AG"], [85, 15])[0], core=core)
            else:
                second = rng.choice(EN_B) if rng.random() < 0.8 else ""
                core = (rng.choice(EN_A) + " " + second).strip()
                if country == "US":
                    lf = rng.choices(["Inc.", "LLC", "Corp."], [60, 30, 10])[0]
                else:
                    lf = rng.choices(["Ltd", "Limited", "PLC", "LLP"], [60, 20, 10, 10])[0]
                co.update(kind=country.lower(), lf=lf, core=core)
            if not self.claim_core(co["core"]):
                continue
            if co["kind"] == "ip":
                co["inn"] = self.new_inn(12)
                co["email"] = self.freemail(translit(co["core"].split()[0]))
                if rng.random() < 0.8:
                    return self.add(co)  # a sole trader: no website of their own
            elif country == "RU" and rng.random() < 0.85:
                co["inn"] = self.new_inn(10)
            co["email"] = self.freemail(
                translit(co["core"]).replace(" ", ".").replace("-", "."))
            if rng.random() < 0.1:
                return self.add(co)
            if not self.pick_host(co):
                continue
            if rng.random() < 0.25:
                alias = self.alias_of(co)
                if alias and self.claim_core(alias):
                    co["alias"] = alias
            return self.add(co)
        raise SystemExit("make_demo: universe exhausted for %s" % country)

    def pick_host(self, co):
        rng = self.rng
        base = co["core"]
        if co["country"] in ("RU", "KZ"):
            if co["country"] == "RU" and rng.random() < 0.12:
                label = base.lower().replace(" ", "-").replace("ё", "е")
                co["idn"] = True
                host = label + ".рф"
            else:
                label = translit(base).replace(" ", "-")
                tld = "kz" if co["country"] == "KZ" else rng.choice(["ru", "ru", "ru", "com"])
                host = label + "." + tld
        else:
            label = base.lower().replace(" ", rng.choice(["", "-"]))
            label = label.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")
            tld = {"DE": ["de", "de", "com"], "GB": ["co.uk", "co.uk", "com"],
                   "US": ["com", "com", "io", "net"]}[co["country"]]
            host = label + "." + rng.choice(tld)
        if not self.claim_domain(host):
            return False
        co["host"] = host
        return True

    def alias_of(self, co):
        rng = self.rng
        core = co["core"]
        if co["kind"] == "ip":
            return None
        if co["country"] in ("RU", "KZ"):
            return rng.choice(["Группа компаний %s", "%s Групп", "%s Холдинг", "ТД %s"]) % core
        if co["country"] == "DE":
            return core + " Deutschland"
        return core + rng.choice([" International", " Group", " Holdings", " Worldwide"])


# ---- rendering one record -----------------------------------------------------

RU_NAME_FORMS = ["{lf} «{n}»", "{lf} «{n}»", '{lf} "{n}"', "{lf} {n}", "{n} {lf}", "{n}",
                 "{lf} “{n}”"]
EN_NAME_FORMS = ["{n} {lf}", "{n} {lf}", "{n}, {lf}", "{n}"]
ALT_FORMS = {"ru": ["ООО", "АО", "ПАО"], "us": ["Inc.", "LLC", "Corp.", "Corporation"],
             "de": ["GmbH", "AG"], "gb": ["Ltd", "Ltd.", "Limited", "PLC"]}


def render_name(rng, co, use_alias):
    n = co["alias"] if use_alias and co["alias"] else co["core"]
    lf = co["lf"]
    if co["kind"] in ALT_FORMS and rng.random() < 0.15:
        lf = rng.choice(ALT_FORMS[co["kind"]])  # legal form changed or misremembered
    if co["kind"] == "ip":
        name = rng.choice(["ИП {n}", "ИП {n}", "{n} ИП", "{n}"]).format(n=n)
    elif co["kind"] in ("ru", "too"):
        forms = list(RU_NAME_FORMS)
        if lf == "ООО":
            forms.append("Общество с ограниченной ответственностью «{n}»")
        name = rng.choice(forms).format(lf=lf, n=n)
    else:
        name = rng.choice(EN_NAME_FORMS).format(lf=lf, n=n)
    if rng.random() < 0.08:
        name = name.upper()
    elif rng.random() < 0.04:
        name = name.replace(" ", "  ", 1)
    return name


def render_site(rng, co):
    host = co["host"]
    if co["idn"] and rng.random() < 0.4:
        host = ".".join(lab.encode("idna").decode("ascii") for lab in host.split("."))
    forms = ["{h}", "www.{h}", "https://www.{h}/", "http://{h}", "https://{h}",
             "{h}/contacts", "https://www.{h}/about-us", "info@{h}", "sales@{h}",
             "http://shop.{h}"]
    site = rng.choice(forms).format(h=host)
    if not co["idn"] and rng.random() < 0.12:
        site = site.upper()
    return site


def render_country(rng, co, sure_only):
    cc = co["country"]
    names = {"RU": ["Russia", "Россия"], "US": ["United States"], "DE": ["Germany"],
             "GB": ["United Kingdom"], "KZ": ["Kazakhstan"]}[cc]
    if sure_only:
        names = [v for v in names if v in COUNTRY_NAMES_SURE]
    r = rng.random()
    if not sure_only and r < 0.05:
        return ""
    if names and r < 0.3:
        return rng.choice(names)
    return cc


def render(rng, co, org, intent, is_self):
    """Field dict of one record of `co` in `org`, following the company's match intent."""
    rec = {"org": org, "co": co["idx"], "name": "", "domain": "", "tax_id": "",
           "country": "", "city": "", "owner": "", "amount": ""}
    use_alias = rng.random() < 0.35
    sure_country = False
    inn = False
    site = "random"
    if intent == "tax":
        inn = True
    elif intent == "domain":
        inn = not is_self and rng.random() < 0.3
        site = "site"
    elif intent == "name":
        use_alias = False
        sure_country = True
        inn = not is_self and rng.random() < 0.4
        site = "nosite" if is_self else "random"
    else:
        inn = rng.random() < 0.75
    rec["name"] = render_name(rng, co, use_alias)
    rec["country"] = render_country(rng, co, sure_country)
    if inn and co["inn"]:
        rec["tax_id"] = co["inn"]
    if site == "random":
        r = rng.random()
        site = "site" if r < 0.75 else ("email" if r < 0.9 else "nosite")
    if site == "site" and co["host"]:
        rec["domain"] = render_site(rng, co)
    elif site != "nosite" and (site == "email" or not co["host"]):
        rec["domain"] = co["email"] if rng.random() < 0.7 else ""
    elif site == "nosite" and rng.random() < 0.3:
        rec["domain"] = co["email"]
    r = rng.random()
    if r < 0.82:
        form = rng.choice(CITY_FORMS[co["country"]])
        rec["city"] = form.format(c=co["city"])
        if co["country"] not in ("RU", "KZ") and rng.random() < 0.08:
            rec["city"] = rec["city"].upper()
    elif r < 0.94:
        rec["city"] = ""
    else:
        rec["city"] = rng.choice([c for c in OTHER_CITIES[co["country"]] if c != co["city"]])
    return rec


# ---- populations ------------------------------------------------------------------

POP_SETS = [(C,), (P,), (O,), (C, O), (P, O)]
POP_WEIGHTS = {"acme": [30, 40, 14, 8, 8], "globex": [35, 33, 16, 8, 8],
               "romashka": [40, 35, 13, 6, 6], "initech": [30, 45, 11, 7, 7]}


def pick_pops(rng, org):
    return rng.choices(POP_SETS, POP_WEIGHTS[org])[0]


def allowed(ours, theirs, partner):
    return all((i, j) not in EMPTY_CELLS[partner] for i in ours for j in theirs)


def split_pops(pops, n):
    """Populations of the n (1 or 2) records of one entity in one org; their union is `pops`."""
    if n == 1:
        return [pops]
    if len(pops) == 2:
        return [pops[:1], pops[1:]]  # e.g. a customer record and an upsell-deal record
    return [pops, pops]


def status_text(org, pops, rng):
    words = STATUS_WORDS[org]
    parts = [words[p] for p in pops]
    if org == "globex" and rng.random() < 0.1:
        parts = [w.capitalize() for w in parts]
    return ";".join(parts)


def amount_text(rng, pops):
    if rng.random() < 0.3:
        return ""
    if O in pops:
        value = rng.randrange(100, 5000) * 100
    elif C in pops:
        value = rng.randrange(50, 2500) * 100
    elif rng.random() < 0.7:
        return ""
    else:
        value = rng.randrange(10, 300) * 100
    return str(value) if rng.random() < 0.6 else "%d.%02d" % (value, rng.choice([0, 50, 99]))


# ---- the traps --------------------------------------------------------------------

def traps(u):
    """Hand-made companies showing each rule. Returns [(company, [(org, fields, pops)])]."""
    out = []

    def company(country, core, host=None, inn_len=0, alias=None, same_name=False):
        """A trap company; `same_name`: another trap company already has its name."""
        if (not u.claim_core(core) and not same_name) or (alias and not u.claim_core(alias)):
            raise SystemExit("make_demo: trap name %r taken" % core)
        if host and not u.claim_domain(host):
            raise SystemExit("make_demo: trap domain %r taken" % host)
        co = {"country": country, "core": core, "alias": alias, "host": host,
              "inn": u.new_inn(inn_len) if inn_len else "", "special": True, "idn": False}
        return u.add(co)

    def rec(name, domain="", tax="", country="", city="", owner="", amount=""):
        return {"name": name, "domain": domain, "tax_id": tax, "country": country,
                "city": city, "owner": owner, "amount": amount}

    # Free mail is never a key: two sole traders on mail.ru, two firms on gmail.com.
    a = company("RU", "Соколов Дмитрий Андреевич", inn_len=12)
    out.append((a, [("acme", rec("ИП Соколов Дмитрий Андреевич", "sokolov.da@mail.ru",
                                 a["inn"], "RU", "Казань"), (P,))]))
    b = company("RU", "Кузнецова Ольга Петровна", inn_len=12)
    out.append((b, [("romashka", rec("ИП Кузнецова Ольга Петровна", "kuznetsova.op@mail.ru",
                                     b["inn"], "RU", "Самара"), (C,))]))
    a = company("US", "Brightline Consulting")
    out.append((a, [("acme", rec("Brightline Consulting LLC",
                                 "brightline.consulting@gmail.com", "", "US", "Austin"), (P,))]))
    b = company("US", "Oakridge Bakery")
    out.append((b, [("globex", rec("Oakridge Bakery", "oakridge.bakery@gmail.com", "", "US",
                                   "Boston"), (C,))]))
    # Social pages are not a company's domain either.
    a = company("RU", "Чайка")
    out.append((a, [("acme", rec("ООО «Чайка»", "https://vk.com/chaika_spb", "", "RU",
                                 "Санкт-Петербург"), (P,))]))
    b = company("RU", "Вкуснотека")
    out.append((b, [("romashka", rec("ООО «Вкуснотека»", "vk.com/vkusnoteka", "", "Россия",
                                     "Москва"), (P,))]))
    # One website spelled four ways (www, upper case, e-mail, path) -> domain.
    a = company("US", "Northwind Traders", "northwind-traders.com",
                alias="Northwind Traders International")
    out.append((a, [
        ("acme", rec("Northwind Traders Inc.", "https://www.northwind-traders.com/", "", "US",
                     "Seattle", "James Carter", "240000"), (C, O)),
        ("globex", rec("Northwind Traders International", "NORTHWIND-TRADERS.COM", "",
                       "United States", "Seattle"), (C,)),
        ("initech", rec("Northwind Traders, Inc.", "sales@northwind-traders.com", "", "US",
                        "Seattle"), (P,)),
    ]))
    a = company("DE", "Cobalt Robotik", "cobalt-robotik.de")
    out.append((a, [
        ("acme", rec("Cobalt Robotik GmbH", "cobalt-robotik.de/kontakt", "", "DE", "Stuttgart"),
         (P,)),
        ("globex", rec("COBALT ROBOTIK", "http://www.cobalt-robotik.de", "", "Germany"), (P, O)),
    ]))
    # Tax id only: no website on one side, a different name.
    a = company("RU", "Гранит-Строй", "granit-group.ru", inn_len=10,
                alias="Группа компаний Гранит")
    out.append((a, [
        ("acme", rec("ООО «Гранит-Строй»", "", a["inn"], "RU", "Екатеринбург",
                     "Dmitry Orlov", "180000.00"), (C,)),
        ("romashka", rec("Группа компаний Гранит", "https://granit-group.ru/", a["inn"],
                         "Россия", "Екатеринбург"), (C, O)),
    ]))
    # Tax id only: two different websites (.ru and .com) of the same company.
    a = company("RU", "Меридиан", "meridian-it.ru", inn_len=10, alias="Meridian IT Solutions")
    if not u.claim_domain("meridian-it.com"):
        raise SystemExit("make_demo: trap domain meridian-it.com taken")
    out.append((a, [
        ("acme", rec("АО «Меридиан»", "meridian-it.ru", a["inn"], "RU", "Москва"), (C,)),
        ("initech", rec("Meridian IT Solutions", "https://meridian-it.com/en", a["inn"],
                        "Russia", "Moscow"), (O,)),
    ]))
    # Name and country only: ё/е, legal form moved, free mail, no INN on our side.
    a = company("RU", "Ёлочка", inn_len=10)
    out.append((a, [
        ("acme", rec("ООО «Ёлочка»", "", "", "RU", "Новосибирск"), (P,)),
        ("romashka", rec("Елочка ООО", "elochka.shop@yandex.ru", a["inn"], "Россия",
                         "Новосибирск"), (C,)),
    ]))
    a = company("DE", "Hoffmann Maschinenbau")
    out.append((a, [
        ("acme", rec("Hoffmann Maschinenbau GmbH", "", "", "DE", "Hamburg"), (C,)),
        ("globex", rec("HOFFMANN MASCHINENBAU AG", "", "", "DE", "Hamburg"), (O,)),
    ]))
    # Name and country only: the long Russian legal form, quotes doubled in CSV.
    a = company("RU", "Север")
    out.append((a, [
        ("acme", rec('Общество с ограниченной ответственностью "Север"', "", "", "RU",
                     "Мурманск"), (P,)),
        ("initech", rec("ООО Север", "", "", "Russia", ""), (C,)),
    ]))
    # A shop subdomain under co.uk: co.uk is a public suffix, bramble-foods.co.uk the domain.
    a = company("GB", "Bramble Foods", "bramble-foods.co.uk", alias="Bramble Retail")
    out.append((a, [
        ("acme", rec("Bramble Foods Ltd", "http://shop.bramble-foods.co.uk", "", "GB",
                     "Bristol"), (O,)),
        ("globex", rec("Bramble Retail Limited", "bramble-foods.co.uk", "", "United Kingdom",
                       "Bristol"), (C,)),
    ]))
    # A Cyrillic .рф domain and its punycode form.
    a = company("RU", "Стройресурс", "стройресурс.рф", alias="Стройресурс Групп")
    puny = registrable_domain("стройресурс.рф")
    out.append((a, [
        ("acme", rec("ООО «Стройресурс»", "https://www.стройресурс.рф/", "", "RU", "Москва"),
         (O,)),
        ("romashka", rec("Стройресурс Групп", puny, "", "RU", "Москва"), (O,)),
    ]))
    # Same name, different countries: two companies.
    a = company("DE", "Atlas", "atlas-maschinen.de")
    out.append((a, [("acme", rec("Atlas GmbH", "atlas-maschinen.de", "", "DE", "Köln"), (C,))]))
    b = {"country": "US", "core": "Atlas", "alias": None, "host": "atlas-inc.com", "inn": "",
         "special": True, "idn": False}
    if not u.claim_domain("atlas-inc.com"):
        raise SystemExit("make_demo: trap domain atlas-inc.com taken")
    b = u.add(b)
    out.append((b, [("globex", rec("Atlas Inc.", "https://atlas-inc.com", "", "US", "Chicago"),
                     (C,))]))
    # Transitive: our two records share nothing, globex's record links both.
    a = company("GB", "Contoso", "contoso.co.uk", alias="Contoso Retail Group")
    out.append((a, [
        ("acme", rec("Contoso Ltd", "www.contoso.co.uk", "", "GB", "London"), (C,)),
        ("acme", rec("Contoso Retail Group", "", "", "GB", "London"), (P,)),
        ("globex", rec("Contoso Retail Group", "https://www.contoso.co.uk/", "", "GB",
                       "London"), (C, O)),
    ]))
    # A duplicate on our side: a customer record and an upsell opportunity, one entity.
    a = company("US", "Pinnacle Health", "pinnaclehealth.com")
    out.append((a, [
        ("acme", rec("Pinnacle Health Inc.", "pinnaclehealth.com", "", "US", "Boston",
                     "Alice Chen", "96000"), (C,)),
        ("acme", rec("Pinnacle Health", "https://pinnaclehealth.com/renewal", "", "US",
                     "Boston", "Alice Chen", "35000.50"), (O,)),
        ("initech", rec("Pinnacle Health LLC", "www.pinnaclehealth.com", "", "US", "Boston"),
         (P,)),
    ]))
    # A pair linked only through a third record: our customer record has the INN and no
    # website, our upsell deal has the INN and the website, romashka only the website.
    a = company("RU", "Парус-Трейд", "parus-trade.ru", inn_len=10, alias="ТД Парус")
    out.append((a, [
        ("acme", rec("ООО «Парус-Трейд»", "", a["inn"], "RU", "Москва"), (C,)),
        ("acme", rec("Парус-Трейд", "https://parus-trade.ru/", a["inn"], "RU", "г. Москва"),
         (O,)),
        ("romashka", rec("ТД Парус", "www.parus-trade.ru", "", "Россия", "Москва"), (C,)),
    ]))

    # ---- rules v2 ----
    # Two ООО «Магнолия» of ours, in Moscow and in Kazan: one name, two companies. Romashka's
    # Магнолия in "г. Казань" is the Kazan one (the name matches only with the city); an
    # initech Магнолия with no city could be either, so it matches neither.
    a = company("RU", "Магнолия")
    out.append((a, [("acme", rec("ООО «Магнолия»", "", "", "RU", "Москва"), (P,))]))
    b = company("RU", "Магнолия", inn_len=10, same_name=True)
    out.append((b, [
        ("acme", rec("ООО «Магнолия»", "magnolia.kzn@mail.ru", "", "RU", "Казань"), (C,)),
        ("romashka", rec("Магнолия ООО", "", b["inn"], "Россия", "г. Казань"), (C,)),
    ]))
    c = company("RU", "Магнолия", same_name=True)
    out.append((c, [("initech", rec("Магнолия", "", "", "RU", ""), (P,))]))
    # A group's website on two companies with different INNs: it links neither, and a
    # record with only that website stays alone. Сибирь-Энерго still matches by its INN.
    if not u.claim_domain("sibir-group.ru"):
        raise SystemExit("make_demo: trap domain sibir-group.ru taken")
    a = company("RU", "Сибирь-Энерго", inn_len=10)
    out.append((a, [
        ("acme", rec("ООО «Сибирь-Энерго»", "https://sibir-group.ru/energo", a["inn"], "RU",
                     "Новосибирск"), (C,)),
        ("initech", rec("Сибирь-Энерго", "sibir-group.ru", a["inn"], "RU", "Новосибирск"),
         (P,)),
    ]))
    b = company("RU", "Сибирь-Логистик", inn_len=10)
    out.append((b, [("romashka", rec("ООО «Сибирь-Логистик»", "www.sibir-group.ru", b["inn"],
                                     "Россия", "Новосибирск"), (C,))]))
    c = company("RU", "Sibir Group")
    out.append((c, [("initech", rec("Sibir Group", "https://www.sibir-group.ru/", "", "RU",
                                    "Новосибирск"), (C,))]))
    # Sole traders are never matched by name: two ИП Лебедев Андрей Сергеевич in Moscow (one
    # with an INN, one without), and ИП Богданов next to ООО «Богданов» in Samara.
    a = company("RU", "Лебедев Андрей Сергеевич", inn_len=12)
    out.append((a, [("acme", rec("ИП Лебедев Андрей Сергеевич", "lebedev.as@mail.ru",
                                 a["inn"], "RU", "Москва"), (P,))]))
    b = company("RU", "Лебедев Андрей Сергеевич", same_name=True)
    out.append((b, [("romashka", rec("ИП Лебедев Андрей Сергеевич", "lebedev77@yandex.ru", "",
                                     "Россия", "Москва"), (C,))]))
    a = company("RU", "Богданов")
    out.append((a, [("acme", rec("ИП Богданов", "bogdanov.shop@gmail.com", "", "RU",
                                 "Самара"), (C,))]))
    b = company("RU", "Богданов", same_name=True)
    out.append((b, [("initech", rec("ООО «Богданов»", "", "", "RU", "Самара"), (C,))]))
    # Two companies with websites of their own are not one company by name, even in one city.
    a = company("US", "Keystone Analytics", "keystone-analytics.com")
    out.append((a, [("acme", rec("Keystone Analytics Inc.", "keystone-analytics.com", "", "US",
                                 "Boston"), (P,))]))
    b = company("US", "Keystone Analytics", "keystoneanalytics.io", same_name=True)
    out.append((b, [("globex", rec("Keystone Analytics", "https://keystoneanalytics.io", "",
                                   "US", "Boston"), (P,))]))
    return out


# ---- building the orgs' records ----------------------------------------------------

def local_ok(recs, dups_link=True, chain_ok=False):
    """Do the records of one company link as intended under every reading of the rules?

    Each of our records ends up in one entity with each partner record, sharing a key
    with it directly unless `chain_ok`; duplicates in one org link too unless `dups_link`
    is false; and no reading changes which records link or how a pair is matched.
    """
    base = None
    for reading in READINGS:
        ent, facts = link(recs, reading)
        seen = []
        for i, a in enumerate(recs):
            for j in range(i + 1, len(recs)):
                b = recs[j]
                same_org = a["org"] == b["org"]
                crosses_self = (a["org"] == SELF) != (b["org"] == SELF)
                if ((same_org and dups_link) or crosses_self) and ent[i] != ent[j]:
                    return False
                kind = None
                if ent[i] == ent[j]:
                    kind = pair_kind(facts[i], facts[j])
                    if kind is None or (kind == "chain" and crosses_self and not chain_ok):
                        return False
                seen.append(kind)
        if base is None:
            base = seen
        elif seen != base:
            return False
    return True


def weighted_sample(rng, pool, mix, n):
    """n distinct companies from pool, countries drawn by the mix weights."""
    by_country = {}
    for co in pool:
        by_country.setdefault(co["country"], []).append(co)
    for lst in by_country.values():
        rng.shuffle(lst)
    countries = sorted(c for c in mix if by_country.get(c))
    out = []
    while len(out) < n:
        live = [c for c in countries if by_country[c]]
        if not live:
            raise SystemExit("make_demo: universe too small")
        c = rng.choices(live, [mix[x] for x in live])[0]
        out.append(by_country[c].pop())
    return out


def build(rng):
    u = Universe(rng)
    plan = traps(u)
    for country in sorted(UNIVERSE):
        for _ in range(UNIVERSE[country]):
            u.generic(country)
    generic = [co for co in u.companies if not co["special"]]

    def trap_rows(org):
        return sum(1 for _, rows in plan for o, _, _ in rows if o == org)

    def trap_overlap(partner):
        n = 0
        for _, rows in plan:
            orgs = {o for o, _, _ in rows}
            n += SELF in orgs and partner in orgs
        return n

    # acme: its generic companies, six of them twice.
    dup_self = 6
    ours = weighted_sample(rng, generic, COUNTRY_MIX[SELF],
                           ROWS[SELF] - trap_rows(SELF) - dup_self)
    ours_set = {co["idx"] for co in ours}
    members = {co["idx"]: {SELF: 1} for co in ours}
    for co in rng.sample(ours, dup_self):
        members[co["idx"]][SELF] = 2
    others = [co for co in generic if co["idx"] not in ours_set]

    # Rows the initech reader must reject: companies we hold that initech would match.
    reject_cos = rng.sample([co for co in ours if co["host"] and members[co["idx"]][SELF] == 1], 5)
    reject_set = {co["idx"] for co in reject_cos}

    for partner in PARTNERS:
        dup = 2
        n_shared = OVERLAP[partner] - trap_overlap(partner)
        pool = [co for co in ours if co["idx"] not in reject_set]
        shared = weighted_sample(rng, pool, COUNTRY_MIX[partner], n_shared)
        n_own = ROWS[partner] - trap_rows(partner) - n_shared - dup
        own = weighted_sample(rng, others, COUNTRY_MIX[partner], n_own)
        for co in shared + own:
            members.setdefault(co["idx"], {})[partner] = 1
        for co in rng.sample(shared[:10] + own[:10], dup):
            members[co["idx"]][partner] = 2

    # Populations per (company, org); then one entity in each cell meant to be non-empty,
    # from companies no earlier partner has pinned, and partner populations redrawn until
    # they keep the empty cells empty.
    pops = {}
    for idx in sorted(members):
        for org in ORGS:
            if org in members[idx]:
                pops[idx, org] = pick_pops(rng, org)
    pinned = set()
    for partner in PARTNERS:
        shared = [idx for idx in sorted(members)
                  if SELF in members[idx] and partner in members[idx] and idx not in pinned]
        rng.shuffle(shared)
        cells = [(i, j) for i in range(3) for j in range(3) if (i, j) not in EMPTY_CELLS[partner]]
        for (i, j), idx in zip(cells, shared):
            pops[idx, SELF], pops[idx, partner] = (i,), (j,)
            pinned.add((idx, partner))
            pinned.add(idx)
    for partner in PARTNERS:
        for idx in sorted(members):
            if SELF not in members[idx] or partner not in members[idx]:
                continue
            if (idx, partner) in pinned:
                continue
            while not allowed(pops[idx, SELF], pops[idx, partner], partner):
                pops[idx, partner] = pick_pops(rng, partner)

    records = {org: [] for org in ORGS}
    for co, rows in plan:
        recs = []
        for org, fields, ps in rows:
            r = dict(fields, org=org, co=co["idx"], pops=ps)
            recs.append(r)
        if not local_ok(recs, dups_link=False, chain_ok=True):
            raise SystemExit("make_demo: trap %s does not link as intended" % co["core"])
        for r in recs:
            records[r["org"]].append(r)

    for idx in sorted(members):
        co = u.companies[idx]
        m = members[idx]
        in_partners = [p for p in PARTNERS if p in m]
        if SELF in m and in_partners:
            # Sole traders never match by name.
            intents = {"domain": 3 if co["host"] else 0, "name": 0 if co["kind"] == "ip" else 1,
                       "tax": 2 if co["inn"] else 0}
            intent = rng.choices(list(intents), list(intents.values()))[0]
        else:
            intent = "solo"
        for _ in range(500):
            recs = []
            for org in ORGS:
                for ps in split_pops(pops[idx, org], m[org]) if org in m else []:
                    r = render(rng, co, org, intent, org == SELF)
                    r["pops"] = ps
                    recs.append(r)
            if local_ok(recs):
                break
        else:
            raise SystemExit("make_demo: cannot render %s consistently" % co["core"])
        for r in recs:
            records[r["org"]].append(r)

    for org in ORGS:
        for r in records[org]:
            if not r["owner"] and rng.random() < 0.85:
                r["owner"] = rng.choice(OWNERS[org])
            if not r["amount"]:
                r["amount"] = amount_text(rng, r["pops"])
            r["status"] = status_text(org, r["pops"], rng)

    rejects = make_rejects(rng, reject_cos)
    return records, rejects


def make_rejects(rng, cos):
    """Rows of companies we hold, each broken in one way the CSV reader must refuse."""
    rows = []
    whys = ["status", "id", "empty-status", "fields", "amount"]
    for why, co in zip(whys, cos):
        r = render(rng, co, "initech", "domain", False)
        r.update(status="prospect", owner=rng.choice(OWNERS["initech"]), amount="",
                 why=why, pops=())
        if why == "status":
            r["status"] = "partner"
        elif why == "empty-status":
            r["status"] = ""
        elif why == "amount":
            r["status"] = "opportunity"
            r["amount"] = "TBD"
        elif why == "fields":
            r["name"] = "%s, %s" % (co["core"], co["lf"])  # written unquoted: a field too many
        rows.append(r)
    return rows


# ---- writing ------------------------------------------------------------------------

def csv_field(value, delim):
    if any(ch in value for ch in (delim, ";", '"', "\n", "\r")) or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


FILE_STYLE = {
    "acme": {"delim": ",", "bom": False, "eol": "\n", "header": HEADER, "prefix": "ACME-",
             "width": 5, "start": 1},
    "globex": {"delim": ",", "bom": False, "eol": "\n", "header": HEADER, "prefix": "GX",
               "width": 6, "start": 104001},
    "romashka": {"delim": ";", "bom": True, "eol": "\r\n", "header": ROMASHKA_HEADER,
                 "prefix": "", "width": 0, "start": 2301},
    "initech": {"delim": ",", "bom": False, "eol": "\n", "header": HEADER, "prefix": "IN-",
                "width": 4, "start": 1},
}


def write_csv(rng, org, recs, rejects):
    st = FILE_STYLE[org]
    rows = list(recs)
    rng.shuffle(rows)
    for r in rejects:
        rows.insert(rng.randrange(len(rows) + 1), r)
    lines = [st["delim"].join(csv_field(h, st["delim"]) for h in st["header"])]
    n = st["start"]
    for r in rows:
        if r.get("why") == "id":
            r["id"] = ""
        else:
            r["id"] = "%s%0*d" % (st["prefix"], st["width"], n)
            n += rng.randrange(1, 4) if org == "romashka" else 1
        values = [r["id"], r["name"], r["domain"], r["tax_id"], r["country"], r["status"],
                  r["city"], r["owner"], r["amount"]]
        cells = [csv_field(v, st["delim"]) for v in values]
        if r.get("why") == "fields":
            cells[1] = r["name"]
        lines.append(st["delim"].join(cells))
    text = st["eol"].join(lines) + st["eol"]
    return ("\ufeff" if st["bom"] else "") + text


def json_text(value):
    """Indented JSON with lists of plain values kept on one line, like [1, 2, 3]."""
    text = json.dumps(value, ensure_ascii=False, indent=2)
    flat = re.compile(r"\[\s*([^\[\]{}]*?)\s*\]", re.S)
    return flat.sub(lambda m: "[" + ", ".join(
        part.strip() for part in m.group(1).split(",\n")) + "]", text) + "\n"


def config():
    csv_src = {org: {"type": "csv", "path": "data/%s.csv" % org} for org in ORGS}
    csv_src["romashka"].update({
        "delimiter": ";",
        "columns": dict(zip(HEADER, ROMASHKA_HEADER)),
        "populations": {"клиент": "customers", "лид": "prospects", "сделка": "opportunities"},
    })
    return {
        "self": SELF,
        "store": "dir:./acctmap-data",
        "orgs": [
            {"id": "acme", "name": "Acme Cloud", "sources": [csv_src["acme"]]},
            {"id": "globex", "name": "Globex Integration", "sources": [csv_src["globex"]],
             "share": {"customers": "accounts", "prospects": "counts",
                       "opportunities": "none"}},
            {"id": "romashka", "name": "Ромашка Консалтинг", "sources": [csv_src["romashka"]],
             "share": {"customers": {"level": "accounts",
                                     "fields": ["id", "name", "domain", "owner"]},
                       "prospects": "counts", "opportunities": "hidden"}},
            {"id": "initech", "name": "Initech Partners", "sources": [csv_src["initech"]],
             "share": {"customers": "counts", "prospects": "counts",
                       "opportunities": "none"}},
        ],
    }


# ---- reading back and matching ---------------------------------------------------------

def read_back(org, text, cfg):
    """Parse a written file like the engine's CSV reader: (records, rejected rows)."""
    src = next(o for o in cfg["orgs"] if o["id"] == org)["sources"][0]
    names = dict(zip(HEADER, HEADER))
    names.update(src.get("columns", {}))
    statuses = {w: POPS.index(p) for w, p in src.get("populations", {}).items()}
    for i, word in enumerate(["customer", "prospect", "opportunity"]):
        statuses.setdefault(word, i)
        statuses.setdefault(POPS[i], i)
    if text.startswith("\ufeff"):
        text = text[1:]
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=src.get("delimiter", ",")))
    header = rows[0]
    at = {k: header.index(v) for k, v in names.items()}
    recs, rejected = [], 0
    for row in rows[1:]:
        if len(row) != len(header):
            rejected += 1
            continue
        r = {k: row[at[k]].strip() for k in HEADER}
        pops = set()
        bad = not r["id"] or not (r["name"] or r["domain"] or r["tax_id"])
        for piece in r["status"].split(";"):
            piece = piece.strip().lower()
            if piece:
                if piece not in statuses:
                    bad = True
                else:
                    pops.add(statuses[piece])
        amt = r["amount"]
        if amt and not (amt.replace(".", "", 1).isdigit() and len(amt.partition(".")[2]) <= 2):
            bad = True
        if bad or not pops:
            rejected += 1
            continue
        r["org"] = org
        r["pops"] = pops
        recs.append(r)
    return recs, rejected


def expected(all_recs, reading, order="sorted"):
    ent, facts = link(all_recs, reading, order)
    result = {"self": SELF, "partners": []}
    pairs = []
    ours = {}
    for i, r in enumerate(all_recs):
        if r["org"] == SELF:
            ours.setdefault(ent[i], set()).update(r["pops"])
    for partner in PARTNERS:
        theirs = {}
        for i, r in enumerate(all_recs):
            if r["org"] == partner:
                theirs.setdefault(ent[i], set()).update(r["pops"])
        m = [[0] * 3 for _ in range(3)]
        for e in sorted(set(ours) & set(theirs)):
            for a in ours[e]:
                for b in theirs[e]:
                    m[a][b] += 1
        result["partners"].append({"partner": partner, "ours": POPS, "theirs": POPS,
                                   "matrix": m})
        for i, a in enumerate(all_recs):
            if a["org"] != SELF:
                continue
            for j, b in enumerate(all_recs):
                if b["org"] == partner and ent[i] == ent[j]:
                    kind = pair_kind(facts[i], facts[j])
                    if kind is None:
                        raise SystemExit("make_demo: %s %s and %s %s share only the name of "
                                         "a sole trader" % (SELF, a["id"], partner, b["id"]))
                    pairs.append((partner, a["id"], b["id"], kind))
    pairs.sort(key=lambda p: (PARTNERS.index(p[0]), p[1], p[2]))
    # Entities as sets of records, to compare readings whose root indices differ.
    groups = {}
    for i, e in enumerate(ent):
        groups.setdefault(e, []).append(i)
    partition = sorted(tuple(g) for g in groups.values())
    return result, pairs, ent, partition


def main():
    check_only = "--check" in sys.argv[1:]
    rng = random.Random(SEED)
    records, rejects = build(rng)
    cfg = config()
    files = {"acctmap.json": json_text(cfg)}
    for org in ORGS:
        files["data/%s.csv" % org] = write_csv(rng, org, records[org],
                                               rejects if org == "initech" else [])

    # Read the files back and match them, under every reading of the rules.
    all_recs, rejected = [], {}
    for org in ORGS:
        recs, n_bad = read_back(org, files["data/%s.csv" % org], cfg)
        all_recs += recs
        if n_bad:
            rejected[org] = n_bad
    truth = {(r["org"], r["id"]): r["co"] for org in ORGS for r in records[org]}
    for org in ORGS:
        ids = [r["id"] for r in records[org]]
        if len(ids) != len(set(ids)) or len(ids) != ROWS[org]:
            raise SystemExit("make_demo: %s: ids not unique or wrong row count" % org)
    if rejected != {"initech": len(rejects)}:
        raise SystemExit("make_demo: rejected rows %r, meant initech: %d" % (rejected,
                                                                             len(rejects)))
    result, pairs, ent, partition = expected(all_recs, BASE_READING)
    for reading in READINGS:
        for order in ORDERS:
            other = expected(all_recs, reading, order)
            if other[0] != result or other[1] != pairs or other[3] != partition:
                raise SystemExit("make_demo: result depends on reading %r (drop_punct, "
                                 "country names, folded ИП, late city marks), order %s"
                                 % (reading, order))
    company_of_entity = {}
    for i, r in enumerate(all_recs):
        co = truth[r["org"], r["id"]]
        if company_of_entity.setdefault(ent[i], co) != co:
            raise SystemExit("make_demo: %s %s links two companies" % (r["org"], r["id"]))
    meant = set()
    for a in all_recs:
        if a["org"] != SELF:
            continue
        for b in all_recs:
            if b["org"] != SELF and truth[SELF, a["id"]] == truth[b["org"], b["id"]]:
                meant.add((b["org"], a["id"], b["id"]))
    if meant != {p[:3] for p in pairs} or any(p[3] is None for p in pairs):
        raise SystemExit("make_demo: matched pairs differ from the companies meant")
    for rec in all_recs:
        if rec["tax_id"] and not inn_valid(rec["tax_id"]):
            raise SystemExit("make_demo: bad INN %s" % rec["tax_id"])
    for p in result["partners"]:
        for i in range(3):
            for j in range(3):
                empty = (i, j) in EMPTY_CELLS[p["partner"]]
                if (p["matrix"][i][j] == 0) != empty:
                    raise SystemExit("make_demo: %s cell %s,%s is %d" % (
                        p["partner"], POPS[i], POPS[j], p["matrix"][i][j]))

    result["rejected"] = rejected
    files["expected.json"] = json_text(result)
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["partner", "our_id", "their_id", "matched_by"])
    w.writerows(pairs)
    files["expected_pairs.csv"] = out.getvalue()

    stale = []
    for rel, text in files.items():
        path = os.path.join(ROOT, rel)
        data = text.encode("utf-8")
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        if same:
            continue
        stale.append(rel)
        if not check_only:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(data)
            os.replace(path + ".tmp", path)

    by_kind = {}
    for p in pairs:
        key = (p[0], p[3])
        by_kind[key] = by_kind.get(key, 0) + 1
    for org in ORGS:
        n = sum(1 for r in all_recs if r["org"] == org)
        line = "%-9s %3d rows" % (org, n)
        if org != SELF:
            shared = {ent[i] for i, r in enumerate(all_recs) if r["org"] == org} & \
                {ent[i] for i, r in enumerate(all_recs) if r["org"] == SELF}
            kinds = ", ".join("%s %d" % (k, by_kind.get((org, k), 0)) for k in KIND_ORDER
                              if by_kind.get((org, k)))
            line += ", %d entities shared with %s, pairs: %s" % (len(shared), SELF, kinds)
        if org in rejected:
            line += ", %d rejected" % rejected[org]
        print(line)
    for p in result["partners"]:
        print("%-9s %s" % (p["partner"], p["matrix"]))
    if check_only and stale:
        print("make_demo: out of date: %s" % ", ".join(stale), file=sys.stderr)
        return 1
    print("make_demo: %s" % ("wrote " + ", ".join(stale) if stale else "up to date"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
