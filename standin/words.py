"""Word lists of the stand-in monolith's generated listings (standin.generate draws from them).

Languages: 0 = Serbian Latin, 1 = Serbian Cyrillic, 2 = Russian, 3 = English. Lists
indexed by language have one entry per language, in that order.
"""

from __future__ import annotations

LANGUAGE_CODES = ["sr", "sr", "ru", "en"]


def _words(text: str) -> list[str]:
    """Word lists written compactly: entries separated by '|'."""
    return [word.strip() for word in text.split("|")]


ITEMS = [
    _words(
        "Bicikl | Mobilni telefon | Laptop | Frižider | Veš mašina | Kauč | Trpezarijski sto | Dečja kolica"
        " | Zimske gume | Gitara | Fotoaparat | Televizor | Patike | Jakna | Usisivač | Radni sto"
    ),
    _words(
        "Бицикл | Мобилни телефон | Лаптоп | Фрижидер | Веш машина | Кауч | Трпезаријски сто | Дечја колица"
        " | Зимске гуме | Гитара | Фотоапарат | Телевизор | Патике | Јакна | Усисивач | Радни сто"
    ),
    _words(
        "Велосипед | Мобильный телефон | Ноутбук | Холодильник | Стиральная машина | Диван | Обеденный стол"
        " | Детская коляска | Зимние шины | Гитара | Фотоаппарат | Телевизор | Кроссовки | Куртка | Пылесос"
        " | Письменный стол"
    ),
    _words(
        "Bicycle | Mobile phone | Laptop | Fridge | Washing machine | Sofa | Dining table | Baby stroller"
        " | Winter tyres | Guitar | Camera | TV | Sneakers | Jacket | Vacuum cleaner | Desk"
    ),
]
# Two brands per item: item i uses BRANDS[2i] or BRANDS[2i+1].
BRANDS = _words(
    "Scott | Capriolo | Samsung | Xiaomi | Lenovo | Dell | Gorenje | Beko | Bosch | Candy | IKEA | Matis"
    " | IKEA | Forma Ideale | Chicco | Cybex | Michelin | Tigar | Yamaha | Fender | Canon | Nikon | LG | Samsung"
    " | Nike | Adidas | Zara | The North Face | Philips | Rowenta | IKEA | Forma Ideale"
)
# Typical price in RSD per item (same order as ITEMS); a listing's price varies x0.3..x3.3 around it.
ITEM_PRICES_RSD = [30000, 35000, 70000, 45000, 40000, 35000, 15000, 20000]
ITEM_PRICES_RSD += [16000, 25000, 50000, 45000, 8000, 7000, 12000, 10000]
RSD_PER_EUR = 117.0
QUALIFIERS = [
    _words(
        "kao nov | odlično stanje | hitno | povoljno | malo korišćen | sa garancijom | zamena moguća | bez oštećenja"
    ),
    _words("као нов | одлично стање | хитно | повољно | мало коришћен | са гаранцијом | замена могућа | без оштећења"),
    _words(
        "как новый | отличное состояние | срочно | недорого | мало использовался | с гарантией"
        " | возможен обмен | без повреждений"
    ),
    _words(
        "like new | excellent condition | urgent | good price | barely used | with warranty | swap possible | no damage"
    ),
]
CONDITIONS = ["new", "used", "like_new", "refurbished"]
CONDITION_WORDS = [
    _words("novo | korišćeno | kao novo | obnovljeno"),
    _words("ново | коришћено | као ново | обновљено"),
    _words("новое | б/у | как новое | восстановленное"),
    _words("new | used | like new | refurbished"),
]
SELL_PREFIX = ["Prodajem ", "Продајем ", "Продаю ", "Selling "]
CONDITION_LABEL = ["Stanje:", "Стање:", "Состояние:", "Condition:"]
PICKUP_LABEL = ["Preuzimanje: ", "Преузимање: ", "Самовывоз: ", "Pickup: "]
EXTRA_LINE = [
    "Cena nije fiksna, javite se porukom.",
    "Цена није фиксна, јавите се поруком.",
    "Цена обсуждается, пишите в сообщения.",
    "Price negotiable, message me.",
]
PRODUCT_LINE = [
    "Novo, u originalnom pakovanju.",
    "Ново, у оригиналном паковању.",
    "Новый товар в оригинальной упаковке.",
    "Brand new, in original packaging.",
]
WARRANTY_LABEL = ["Garancija:", "Гаранција:", "Гарантия:", "Warranty:"]
MONTHS_WORD = [" meseci", " месеци", " мес.", " months"]
DELIVERY_LINE = [
    "Isporuka na teritoriji cele Srbije.",
    "Испорука на територији целе Србије.",
    "Доставка по всей Сербии.",
    "Delivery across Serbia.",
]
MODEL_PREFIXES = ["A", "S", "X", "Pro ", "Serie ", "RK-", "M", "GT "]
COLORS = ["crna", "bela", "siva", "plava", "crvena", "zelena"]
STORE_NAMES = _words(
    "TehnoMax | Digitalni svet | Кућа и башта | Sport Centar | Dečiji svet | Мода Стил | Knjižara Zona"
    " | Auto Delovi Plus | Бела техника | Gaming Zona | Nameštaj Lux | Foto Optika"
)
STREETS = [
    _words(
        "Bulevar oslobođenja | Knez Mihailova | Cara Dušana | Njegoševa | Vojvode Stepe | Kralja Petra"
        " | Takovska | Zmaj Jovina"
    ),
    _words(
        "Булевар ослобођења | Кнез Михаилова | Цара Душана | Његошева | Војводе Степе | Краља Петра"
        " | Таковска | Змај Јовина"
    ),
]
CITIES = [
    ("Beograd", "Београд", "Belgrade", 44.8176, 20.4633),
    ("Novi Sad", "Нови Сад", "Novi Sad", 45.2671, 19.8335),
    ("Niš", "Ниш", "Nis", 43.3209, 21.8958),
    ("Kragujevac", "Крагујевац", "Kragujevac", 44.0128, 20.9114),
    ("Subotica", "Суботица", "Subotica", 46.1005, 19.6650),
    ("Zrenjanin", "Зрењанин", "Zrenjanin", 45.3816, 20.3686),
    ("Pančevo", "Панчево", "Pancevo", 44.8708, 20.6403),
    ("Čačak", "Чачак", "Cacak", 43.8914, 20.3497),
    ("Novi Pazar", "Нови Пазар", "Novi Pazar", 43.1367, 20.5122),
    ("Kraljevo", "Краљево", "Kraljevo", 43.7257, 20.6873),
    ("Smederevo", "Смедерево", "Smederevo", 44.6628, 20.9300),
    ("Leskovac", "Лесковац", "Leskovac", 42.9981, 21.9461),
    ("Užice", "Ужице", "Uzice", 43.8586, 19.8488),
    ("Valjevo", "Ваљево", "Valjevo", 44.2751, 19.8982),
    ("Šabac", "Шабац", "Sabac", 44.7489, 19.6908),
    ("Sombor", "Сомбор", "Sombor", 45.7742, 19.1122),
]
# Weights: Belgrade and Novi Sad dominate, as on any Serbian marketplace.
CITY_WEIGHTS = [8, 3] + [1] * (len(CITIES) - 2)

IMAGE_HOST = "https://s3.svetu.rs"
FILE_EXTENSIONS = [(".jpg", 8), (".png", 1), (".webp", 1)]  # C2C uploads: (extension, weight)
