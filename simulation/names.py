"""Embedded name lists for the agency extracts: common first names and surnames in Wales, with weights.

Weights are rough relative frequencies (Welsh surnames are famously concentrated: Jones, Williams, Davies,
Evans and Thomas alone cover about one person in six), which is what makes linkage by name realistically hard.
"""

from __future__ import annotations

import numpy as np

# fmt: off
SURNAMES: dict[str, float] = {
    "Jones": 57, "Williams": 39, "Davies": 36, "Evans": 24, "Thomas": 22, "Roberts": 15, "Hughes": 12,
    "Lewis": 11, "Morgan": 10, "Griffiths": 9, "James": 8, "Edwards": 8, "Rees": 7, "Jenkins": 7, "Owen": 7,
    "Price": 6, "Phillips": 6, "Smith": 6, "Morris": 5, "Richards": 5, "Parry": 5, "Harris": 4, "Lloyd": 4,
    "Powell": 4, "Pritchard": 3, "Howells": 3, "Watkins": 3, "Pugh": 3, "Matthews": 3, "Bowen": 3, "Ellis": 3,
    "Walters": 2.5, "Rogers": 2.5, "Vaughan": 2.5, "Hopkins": 2.5, "Bevan": 2.5, "Rowlands": 2.5, "Wood": 2,
    "Taylor": 2, "Brown": 2, "Johnson": 2, "Wilson": 2, "White": 2, "Walker": 2, "Hall": 2, "Green": 2,
    "Clarke": 2, "Jackson": 2, "Wright": 2, "Robinson": 2, "Thompson": 2, "Wilkins": 1.5, "Gibbs": 1.5,
    "Humphreys": 1.5, "Llewellyn": 1.5, "Meredith": 1.5, "Prosser": 1.5, "Probert": 1.5, "Gwilliam": 1,
    "Bowden": 1, "Baker": 1.5, "Harvey": 1, "Martin": 1.5, "Cooper": 1.5, "King": 1.5, "Ward": 1.5, "Turner": 1.5,
    "Hill": 1.5, "Moore": 1.5, "Allen": 1.5, "Young": 1.5, "Scott": 1.5, "Mitchell": 1.2, "Carter": 1.2,
    "Bennett": 1.2, "Shaw": 1.2, "Collins": 1.2, "Cook": 1.2, "Bell": 1.2, "Murphy": 1.2, "Kelly": 1.2,
    "Ahmed": 1, "Khan": 1, "Ali": 1, "Hussain": 1, "Begum": 0.8, "Patel": 0.8, "Singh": 0.6, "Nowak": 0.5,
    "Kowalski": 0.4, "Wisniewski": 0.3, "Okafor": 0.3, "Mensah": 0.3, "Mohamed": 0.6, "Abdi": 0.3, "Chen": 0.3,
    "Nguyen": 0.3, "Ap Rhys": 0.2, "Llywelyn": 0.3, "Gruffydd": 0.3, "Cadwaladr": 0.2, "Pryce": 0.8,
    "Bevans": 0.3, "Bowens": 0.2, "Daniel": 1, "David": 1, "Jeremy": 0.3, "Stephens": 1, "Tucker": 0.8,
    "Harding": 0.8, "Webb": 1, "Mills": 0.8, "Lane": 0.6, "Palmer": 0.8, "Gordon": 0.6, "Fisher": 0.6,
    "Barnes": 0.8, "Chapman": 0.8, "Reynolds": 0.8, "Fletcher": 0.6, "Gray": 0.8, "Stevens": 0.8, "Hayes": 0.6,
    "Marshall": 0.6, "Owens": 1, "Griffith": 0.8, "Hopkin": 0.4, "Jenkin": 0.4, "Gwynne": 0.4, "Maddox": 0.3,
    "Nicholas": 0.8, "Francis": 0.8, "Saunders": 0.6, "Sullivan": 0.6, "O'Brien": 0.6, "O'Connor": 0.4,
    "Mc Carthy": 0.3, "Fitzgerald": 0.4, "Doyle": 0.4, "Lynch": 0.4, "Burke": 0.4, "Wyn-Jones": 0.3,
    "Lloyd-Jones": 0.2, "Powell-Davies": 0.1, "Sion": 0.2, "Pugh-Evans": 0.1,
}
#: the long tail (about 44% of people, as the listed surnames cover about 56%): rarer surnames built from
#: English and Welsh place-name parts, each as rare as the others
_TAIL_HEADS = (
    "Ash", "Brad", "Card", "Har", "Pen", "Tre", "Llan", "Aber", "Whit", "Black", "Stan", "Thorn", "Hol", "Mar",
    "Fair", "Gold", "Bro", "Cal", "Dun", "Ever", "Glen", "Hart", "Kings", "Lang", "Mel", "North", "Ox", "Red",
    "Sand", "West",
)
_TAIL_TAILS = (
    "ford", "ley", "well", "ton", "wood", "field", "by", "more", "ridge", "worth", "ham", "brook", "cott",
    "dale", "hurst", "stead", "wick", "land", "row", "den",
)
TAIL_SHARE = 0.44
SURNAME_TAIL: tuple[str, ...] = tuple(h + t for h in _TAIL_HEADS for t in _TAIL_TAILS)
FEMALE: dict[str, float] = {
    "Sarah": 14, "Emma": 12, "Rebecca": 10, "Laura": 10, "Rachel": 9, "Claire": 9, "Louise": 8, "Kelly": 8,
    "Amy": 8, "Jessica": 8, "Hannah": 8, "Chloe": 8, "Megan": 9, "Emily": 8, "Lauren": 8, "Sophie": 8,
    "Charlotte": 7, "Olivia": 7, "Ella": 6, "Grace": 6, "Lily": 6, "Ffion": 5, "Cerys": 5, "Seren": 4,
    "Elin": 4, "Catrin": 4, "Sian": 5, "Nia": 4, "Carys": 3, "Bethan": 4, "Lowri": 4, "Angharad": 2,
    "Rhiannon": 3, "Gwen": 2, "Eleri": 2, "Manon": 2, "Mali": 3, "Alaw": 1, "Non": 1, "Mared": 1, "Efa": 1,
    "Margaret": 6, "Susan": 7, "Julie": 6, "Karen": 6, "Helen": 7, "Elizabeth": 6, "Mary": 6, "Patricia": 4,
    "Linda": 4, "Jennifer": 5, "Nicola": 6, "Michelle": 6, "Lisa": 6, "Joanne": 5, "Amanda": 5, "Donna": 4,
    "Dawn": 3, "Tracey": 4, "Samantha": 5, "Natalie": 5, "Stephanie": 4, "Victoria": 5, "Katie": 6,
    "Jade": 5, "Danielle": 4, "Gemma": 5, "Zoe": 4, "Ruby": 4, "Isla": 3, "Freya": 3, "Evie": 3,
    "Poppy": 3, "Mia": 3, "Ava": 3, "Aisha": 1, "Fatima": 1, "Maria": 2, "Anna": 3, "Agnieszka": 0.5,
}
MALE: dict[str, float] = {
    "David": 14, "John": 13, "Michael": 11, "Paul": 10, "Mark": 10, "Andrew": 10, "Christopher": 9,
    "Richard": 8, "Robert": 8, "Stephen": 8, "Peter": 7, "Gareth": 7, "Steven": 7, "Daniel": 9, "Matthew": 9,
    "James": 10, "Thomas": 8, "Jack": 8, "Joshua": 7, "Ryan": 7, "Luke": 6, "Liam": 6, "Jordan": 5,
    "Lewis": 5, "Callum": 5, "Dylan": 6, "Rhys": 7, "Owen": 6, "Gethin": 3, "Iwan": 3, "Aled": 3, "Dafydd": 3,
    "Huw": 3, "Ieuan": 2, "Osian": 2, "Tomos": 3, "Cai": 2, "Harri": 2, "Ioan": 2, "Emyr": 1, "Gwyn": 2,
    "Rhodri": 2, "Geraint": 2, "Dewi": 2, "Wyn": 1, "Carwyn": 1, "Aneurin": 1, "Steffan": 2, "Alun": 2,
    "William": 7, "George": 6, "Harry": 6, "Oliver": 6, "Charlie": 5, "Alfie": 4, "Noah": 4, "Oscar": 3,
    "Leo": 3, "Jacob": 4, "Ethan": 5, "Kieran": 4, "Nathan": 5, "Craig": 5, "Lee": 6, "Darren": 5,
    "Wayne": 4, "Dean": 4, "Jason": 5, "Kevin": 5, "Anthony": 6, "Brian": 4, "Keith": 3, "Gary": 5,
    "Neil": 4, "Simon": 5, "Martin": 5, "Ian": 5, "Alan": 5, "Philip": 5, "Adam": 6, "Sam": 5, "Ben": 5,
    "Mohammed": 2, "Ali": 1, "Piotr": 0.5, "Tomasz": 0.5, "Kwame": 0.3,
}
# fmt: on


def _draw(names: dict[str, float], size: int, rng: np.random.Generator) -> np.ndarray:
    weights = np.fromiter(names.values(), float)
    return np.asarray(list(names), dtype=object)[rng.choice(len(names), size=size, p=weights / weights.sum())]


def draw_names(female: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A first name (by sex) and a surname for each person, frequency-weighted."""
    first = np.where(female, _draw(FEMALE, len(female), rng), _draw(MALE, len(female), rng))
    listed = sum(SURNAMES.values())
    each = listed * TAIL_SHARE / (1 - TAIL_SHARE) / len(SURNAME_TAIL)
    return first, _draw(SURNAMES | dict.fromkeys(SURNAME_TAIL, each), len(female), rng)
