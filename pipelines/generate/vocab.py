"""Vocabulary of the synthetic landing zone: names, channels, sites, devices, products, weights.

Only plausible values live here; the drawing happens in :mod:`pipelines.generate.sources`. Weights are
relative (they need not sum to one). Sub-genres follow ``conf/mappings/subgenre_to_audience.csv`` where the
pipeline knows them, plus some free text it does not (with commas and quotes, as real EPG data has).
"""
from __future__ import annotations

# ------------------------------------------------------------------------------------------------ people

FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "nl": {
        "F": ("Emma", "Marie", "Louise", "Elise", "Lotte", "Julie", "Sarah", "Laura", "Lien", "Hanne", "An",
              "Els", "Katrien", "Sofie", "Nele", "Griet", "Inge", "Marleen", "Ann", "Fien", "Mila", "Noor"),
        "M": ("Lucas", "Arthur", "Jules", "Noah", "Louis", "Wout", "Pieter", "Jan", "Tom", "Bart", "Koen",
              "Stijn", "Wim", "Dirk", "Jef", "Luc", "Geert", "Bram", "Seppe", "Thibaut", "Robbe", "Jonas"),
    },
    "fr": {
        "F": ("Léa", "Camille", "Chloé", "Manon", "Juliette", "Emma", "Sophie", "Isabelle", "Nathalie",
              "Valérie", "Catherine", "Hélène", "Céline", "Aurélie", "Mélanie", "Anaïs", "Margaux", "Zoé"),
        "M": ("Louis", "Gabriel", "Hugo", "Nathan", "Théo", "Maxime", "Julien", "Nicolas", "Olivier",
              "François", "Philippe", "Jérôme", "Benoît", "Grégory", "Sébastien", "Mathéo", "Noé", "Adam"),
    },
    "de": {
        "F": ("Anna", "Lena", "Lea", "Laura", "Sarah", "Julia", "Sabine", "Monika", "Claudia", "Petra"),
        "M": ("Lukas", "Jonas", "Leon", "Paul", "Felix", "Stefan", "Michael", "Thomas", "Andreas", "Jürgen"),
    },
    "en": {
        "F": ("Olivia", "Emily", "Charlotte", "Amelia", "Grace", "Hannah", "Maria", "Ana", "Fatima", "Aisha"),
        "M": ("James", "Oliver", "Jack", "Harry", "Daniel", "David", "Marco", "Mohamed", "Ahmed", "Pedro"),
    },
}

LAST_NAMES: dict[str, tuple[str, ...]] = {
    "nl": ("Peeters", "Janssens", "Maes", "Jacobs", "Mertens", "Willems", "Claes", "Goossens", "Wouters",
           "De Smet", "Van den Bossche", "Vermeulen", "De Backer", "Hermans", "Dierckx", "Van Damme",
           "De Clercq", "Verhoeven", "Lambrechts", "D'Hondt", "Van de Velde", "Aerts", "Vandenberghe"),
    "fr": ("Dubois", "Lambert", "Dupont", "Martin", "Simon", "Laurent", "Leroy", "Renard", "Lejeune",
           "François", "Denis", "Mathieu", "Collignon", "Lemaire", "Fontaine", "Gilson", "Delvaux",
           "Hubert", "Lefèvre", "Noël", "Dumont", "Masson", "Thiry", "Michaux"),
    "de": ("Müller", "Schmitz", "Schröder", "Lentz", "Heinen", "Kessler", "Cremer", "Margraff", "Pauels",
           "Jousten", "Meyer", "Wagner"),
    "en": ("Smith", "Jones", "Brown", "Garcia", "Rossi", "El Amrani", "Yilmaz", "Kowalski", "Santos",
           "Nguyen", "Haddad", "O'Brien"),
}

# Language of a customer by the official language area of their postal code.
LANGUAGE_BY_AREA: dict[str, tuple[tuple[str, float], ...]] = {
    "nl": (("nl", 93), ("fr", 4), ("en", 3)),
    "fr": (("fr", 94), ("nl", 3), ("en", 3)),
    "bilingual": (("fr", 58), ("nl", 27), ("en", 15)),
    "de": (("de", 72), ("fr", 25), ("en", 3)),
}

EMAIL_DOMAINS = (
    ("gmail.com", 30), ("hotmail.com", 12), ("skynet.be", 12), ("telenet.be", 10), ("outlook.com", 8),
    ("icloud.com", 6), ("proximus.be", 5), ("yahoo.com", 5), ("msn.com", 4), ("live.be", 4), ("scarlet.be", 3),
)

# Adult ages by band (Belgian adult population, roughly): (low, high, weight).
AGE_BANDS = ((18, 24, 9), (25, 34, 15), (35, 44, 17), (45, 54, 18), (55, 64, 17), (65, 74, 13), (75, 90, 11))

# Landline area codes (E.164 +32 then 8 digits) by province.
LANDLINE_AREA = {
    "BE-BRU": "2", "BE-VAN": "3", "BE-VOV": "9", "BE-WLG": "4", "BE-VBR": "16", "BE-WBR": "10", "BE-WHT": "71",
    "BE-VLI": "11", "BE-VWV": "50", "BE-WLX": "63", "BE-WNA": "81",
}

# ------------------------------------------------------------------------------------------------ TV

# Popularity of the IAB CTV genres among Belgian viewers, per age group (young < 30 <= adult < 60 <= senior).
GENRE_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "News": (4, 10, 16), "Drama": (6, 9, 8), "Sports": (7, 9, 8), "Comedy": (8, 6, 3), "Reality": (9, 6, 3),
    "Documentary": (3, 6, 8), "Game Show": (2, 5, 9), "Crime": (4, 6, 6), "Thriller": (5, 5, 3),
    "Action": (7, 5, 2), "Sitcom": (6, 4, 2), "Soap-Opera": (3, 4, 7), "Cooking": (2, 4, 5),
    "Children": (3, 3, 0.5), "Animation": (7, 2, 0.5), "Sci-Fi": (5, 3, 1), "Adventure": (4, 3, 1),
    "Romance": (3, 2, 2), "Mystery": (2, 3, 4), "Horror": (4, 1.5, 0.3), "Fantasy": (4, 2, 0.5),
    "History": (1, 2, 4), "Home & Garden": (1, 3, 4), "Weather": (0.5, 2, 4), "Animals": (2, 2, 3),
    "Automotive": (2, 2, 1), "Business & Finance": (0.5, 2, 2), "Biography": (1, 1.5, 2), "Arts": (1, 1, 2),
    "Awards": (1, 1, 1), "Education": (1, 1, 1), "Hobbies": (1, 1.5, 2), "Holidays": (1, 1, 1),
    "Law": (1, 1, 1), "Outdoors": (1, 1.5, 1.5), "Paranormal": (1, 0.5, 0.3), "Politics": (0.5, 1.5, 2.5),
    "Religion": (0.1, 0.3, 1), "War": (1, 1.5, 2), "Western": (0.5, 1, 2), "Young Adult": (3, 0.5, 0.1),
}

SPORT_SUBGENRES = (
    ("Football", 34), ("Cycling", 18), ("Tennis", 9), ("Formula 1", 8), ("Cyclocross", 5), ("Basketball", 3),
    ("Hockey", 3), ("Athletics", 3), ("Darts", 3), ("Snooker", 3), ("Volleyball", 2), ("Golf", 2),
    ("MotoGP", 2), ("Equestrian", 1), ("Swimming", 1), ("Rugby", 1), ("Boxing", 1), ("Skiing", 1),
)
# Local spellings of sub-genres, used for a share of viewers of that language.
SUBGENRE_SPELLING = {
    ("nl", "Football"): "Voetbal", ("nl", "Cycling"): "Wielrennen", ("fr", "Cycling"): "Cyclisme",
    ("nl", "Cooking"): "Koken", ("fr", "Cooking"): "Cuisine", ("nl", "Gardening"): "Tuinieren",
    ("fr", "Gardening"): "Jardinage",
}

# Sub-genres per genre; "" means no sub-genre (empty in the file).
SUBGENRES: dict[str, tuple[tuple[str, float], ...]] = {
    "Cooking": (("Cooking", 50), ("Baking", 25), ("Barbecue", 10), ("Wine", 5), ("", 10)),
    "Home & Garden": (("Gardening", 35), ("Home & DIY", 25), ("Interior design", 20), ("Real estate", 10), ("", 10)),
    "Hobbies": (("Fishing", 20), ("Gardening", 20), ("Home & DIY", 20), ("Pets", 10), ("", 30)),
    "Documentary": (("Travel", 20), ("History", 15), ("Space & astronomy", 10), ("Pets", 10), ("Health", 5),
                    ("Nature, wildlife", 10), ("", 30)),
    "Game Show": (("Quiz", 45), ('Quiz "De Slimste Mens"', 15), ("", 40)),
    "Reality": (("Talent show, live", 15), ("Dating", 15), ("Fashion", 10), ("Real estate", 10), ("", 50)),
    "Arts": (("Classical music", 25), ("Opera", 10), ("Theatre", 20), ("Jazz", 10), ("Pop music", 15), ("", 20)),
    "Automotive": (("Cars", 70), ("Formula 1", 15), ("", 15)),
    "Business & Finance": (("Personal finance", 50), ("Real estate", 20), ("", 30)),
    "Gaming": (("Gaming", 50), ("eSports", 40), ("", 10)),
    "Education": (("Technology", 30), ("History", 20), ("Space & astronomy", 20), ("", 30)),
    "Outdoors": (("Travel", 30), ("Fishing", 15), ("Running", 15), ("Sailing", 10), ("", 30)),
    "News": (("Magazine, lifestyle", 10), ("Politics", 10), ("", 80)),
    "Holidays": (("Travel", 50), ("", 50)),
    "Animals": (("Pets", 60), ("", 40)),
    "Religion": (("Religion", 60), ("", 40)),
    "Family": (("Movies", 40), ("", 60)),
    "Action": (("Movies", 60), ("", 40)), "Adventure": (("Movies", 60), ("", 40)),
    "Horror": (("Movies", 70), ("", 30)), "Sci-Fi": (("Movies", 50), ("", 50)),
    "Fantasy": (("Movies", 50), ("", 50)), "Romance": (("Movies", 50), ("", 50)),
    "Thriller": (("Movies", 50), ("", 50)), "Western": (("Movies", 70), ("", 30)),
    "Comedy": (("Movies", 30), ("Stand-up", 20), ("", 50)),
    "Sitcom": (("", 100),),
}

# Typical programme length in minutes (the rest: 40).
GENRE_MINUTES = {
    "News": 22, "Weather": 8, "Sports": 85, "Drama": 50, "Soap-Opera": 25, "Sitcom": 25, "Comedy": 40,
    "Children": 25, "Animation": 30, "Documentary": 50, "Reality": 45, "Game Show": 40, "Cooking": 35,
    **{g: 95 for g in ("Action", "Adventure", "Horror", "Thriller", "Sci-Fi", "Fantasy", "Romance", "Western",
                       "War", "Mystery", "Crime", "Family")},
}
MOVIE_GENRES = ("Action", "Adventure", "Horror", "Thriller", "Sci-Fi", "Fantasy", "Romance", "Western", "War")
KIDS_GENRES = ("Children", "Animation", "Anime", "Family")
FACTUAL_GENRES = ("Documentary", "History", "Animals", "Outdoors", "Education")

CHANNELS_BY_LANGUAGE: dict[str, tuple[tuple[str, float], ...]] = {
    "nl": (("een", 25), ("vtm", 25), ("play4", 12), ("canvas", 8), ("vtm2", 6), ("play5", 4), ("vtm3", 3),
           ("vtm4", 3), ("bbc_one", 2)),
    "fr": (("rtl_tvi", 25), ("la_une", 22), ("tf1", 10), ("france_2", 8), ("tipik", 8), ("club_rtl", 8),
           ("ab3", 6), ("plug_rtl", 5)),
    "de": (("das_erste", 25), ("zdf", 25), ("brf", 20), ("rtl_de", 20), ("la_une", 10)),
    "en": (("bbc_one", 30), ("bbc_two", 15), ("een", 15), ("la_une", 15), ("cnn", 10), ("discovery", 15)),
}
SPORTS_CHANNELS = (("pickx_sports_1", 35), ("pickx_sports_2", 15), ("eurosport_1", 20), ("eurosport_2", 8),
                   ("pickx_sports_3", 7), ("dazn", 5), ("canal_plus_sport", 10))
KIDS_CHANNELS = {
    "nl": (("ketnet", 60), ("nickelodeon", 20), ("disney_channel", 20)),
    "fr": (("la_trois", 40), ("nickelodeon", 20), ("disney_channel", 30), ("gulli", 10)),
    "de": (("kika", 60), ("disney_channel", 40)),
    "en": (("cartoon_network", 50), ("disney_channel", 50)),
}
FACTUAL_CHANNELS = (("national_geographic", 35), ("discovery", 30), ("canvas", 15), ("la_trois", 10),
                    ("history", 10))

# Relative viewing starts per local hour 0..23 (prime time peak), weekdays and weekends.
TV_HOURS_WEEKDAY = (1.5, 0.6, 0.3, 0.2, 0.2, 0.3, 1.0, 2.0, 1.6, 1.0, 1.0, 1.1, 1.8, 1.6, 1.2, 1.2, 1.5, 2.5,
                    4.0, 7.0, 10.0, 9.0, 5.5, 3.0)
TV_HOURS_WEEKEND = (2.0, 1.0, 0.5, 0.3, 0.2, 0.3, 0.6, 1.5, 2.5, 3.0, 3.0, 2.6, 2.4, 2.6, 3.0, 3.2, 3.2, 3.2,
                    4.5, 7.0, 9.5, 9.0, 6.0, 3.5)
WEB_HOURS = (0.8, 0.4, 0.2, 0.2, 0.2, 0.4, 1.5, 3.5, 5.0, 4.5, 4.0, 4.2, 5.5, 5.0, 4.0, 3.8, 4.0, 4.5, 4.8,
             5.5, 6.5, 6.5, 4.5, 2.0)
DAYTIME_HOURS = tuple(0.2 if h < 8 else 3.0 if h < 19 else 2.0 if h < 22 else 0.5 for h in range(24))

# ------------------------------------------------------------------------------------------------ ads

N_CAMPAIGNS = 36
N_ADVERTISERS = 14


def campaign_ids() -> tuple[str, ...]:
    """Campaign ids shared by TV and web (cross-media campaigns)."""
    return tuple(f"CMP-2026-{i:03d}" for i in range(1, N_CAMPAIGNS + 1))


def advertiser_of_campaigns() -> tuple[str, ...]:
    """Advertiser id of each campaign (same order as :func:`campaign_ids`)."""
    return tuple(f"ADV-{1001 + (i * 5) % N_ADVERTISERS}" for i in range(N_CAMPAIGNS))


# ------------------------------------------------------------------------------------------------ web

PROXIMUS_SITES = (("proximus.be", 45), ("pickx.be", 40), ("myproximus.be", 15))
THIRD_PARTY_SITES: dict[str, tuple[tuple[str, float], ...]] = {
    "nl": (("hln.be", 18), ("nieuwsblad.be", 14), ("standaard.be", 8), ("demorgen.be", 6), ("vrt.be", 10),
           ("sporza.be", 7), ("2dehands.be", 7), ("immoweb.be", 4), ("coolblue.be", 5), ("bol.com", 7),
           ("zalando.be", 4), ("dagelijksekost.be", 4), ("youtube.com", 6)),
    "fr": (("lesoir.be", 12), ("rtbf.be", 12), ("dhnet.be", 10), ("7sur7.be", 10), ("lalibre.be", 8),
           ("sudinfo.be", 8), ("2ememain.be", 7), ("immoweb.be", 4), ("marmiton.org", 5), ("zalando.be", 4),
           ("coolblue.be", 4), ("youtube.com", 6)),
    "de": (("grenzecho.net", 30), ("brf.be", 20), ("spiegel.de", 15), ("amazon.de", 15), ("youtube.com", 20)),
    "en": (("brusselstimes.com", 25), ("bbc.com", 20), ("politico.eu", 10), ("theguardian.com", 15),
           ("amazon.com.be", 10), ("youtube.com", 20)),
}
WEB_EVENT_TYPES = (("page_view", 660), ("ad_impression", 334), ("ad_click", 6))

# Device make/model per device type: (brand, model, weight); brand "" = not reported.
DEVICES: dict[str, tuple[tuple[str, str, float], ...]] = {
    "mobile": (("Apple", "iPhone 15", 10), ("Apple", "iPhone 14", 8), ("Apple", "iPhone 13", 7),
               ("Apple", "iPhone SE", 3), ("Samsung", "Galaxy S24", 7), ("Samsung", "Galaxy A54", 9),
               ("Samsung", "Galaxy A15", 7), ("Xiaomi", "Redmi Note 13", 6), ("Google", "Pixel 8", 3),
               ("OnePlus", "12", 2), ("Oppo", "A78", 2), ("Motorola", "moto g54", 2)),
    "tablet": (("Apple", "iPad", 12), ("Apple", "iPad Air", 5), ("Samsung", "Galaxy Tab S9", 5),
               ("Samsung", "Galaxy Tab A9", 5), ("Lenovo", "Tab M10", 3)),
    "desktop": (("", "", 60), ("Apple", "Macintosh", 25), ("Microsoft", "Surface", 5), ("Dell", "XPS 13", 5),
                ("HP", "EliteBook", 5)),
}

# ------------------------------------------------------------------------------------------------ shop

# (category, weight for technology fans, weight for everybody else)
PRODUCT_MIX = (("smartphone", 35, 20), ("laptop", 20, 8), ("tablet", 10, 7), ("accessory", 17, 25),
               ("smart_home", 10, 7), ("tv", 5, 8), ("subscription", 3, 25))
TIER_MIX = {"tech": (("premium", 60), ("mid", 30), ("entry", 10)),
            "other": (("premium", 15), ("mid", 45), ("entry", 40))}
# Price range in euro per (category, tier).
PRICES = {
    "smartphone": {"entry": (129, 249), "mid": (299, 599), "premium": (899, 1599)},
    "laptop": {"entry": (349, 549), "mid": (599, 1099), "premium": (1299, 2899)},
    "tablet": {"entry": (149, 299), "mid": (349, 699), "premium": (799, 1699)},
    "tv": {"entry": (279, 499), "mid": (549, 1199), "premium": (1499, 3999)},
    "smart_home": {"entry": (29, 79), "mid": (89, 199), "premium": (219, 599)},
    "accessory": {"entry": (9, 39), "mid": (45, 119), "premium": (149, 449)},
    "subscription": {"entry": (15, 35), "mid": (40, 70), "premium": (75, 125)},
}

# ------------------------------------------------------------------------------------------------ sociodemo

FAMILY_BY_AGE: tuple[tuple[int, tuple[tuple[str, float], ...]], ...] = (
    # (upper age bound exclusive, typology weights)
    (18, (("family_older_children", 75), ("single_parent", 20), ("family_young_children", 5))),
    (25, (("single", 55), ("couple_no_children", 25), ("family_young_children", 10), ("single_parent", 5),
          ("family_older_children", 5))),
    (40, (("single", 25), ("couple_no_children", 25), ("family_young_children", 38), ("single_parent", 7),
          ("family_older_children", 5))),
    (55, (("single", 15), ("couple_no_children", 12), ("family_young_children", 20),
          ("family_older_children", 38), ("single_parent", 12), ("senior_household", 3))),
    (65, (("single", 20), ("couple_no_children", 50), ("family_older_children", 18), ("single_parent", 5),
          ("senior_household", 7))),
    (200, (("senior_household", 70), ("single", 20), ("couple_no_children", 10))),
)
HOUSEHOLD_SIZE = {
    "single": (1, 1), "couple_no_children": (2, 2), "family_young_children": (3, 5),
    "family_older_children": (3, 5), "single_parent": (2, 4), "senior_household": (1, 2),
}
