"""Write the tinychat corpus: invented fables from a small probabilistic grammar.

    python tools/make_corpus.py [OUT] [--bytes N] [--seed S]

The text is generated here, from word lists and sentence templates written for
this recipe, so it is free of third-party rights: the generator and its output
are dedicated to the public domain (CC0 1.0). It has structure at several
scales for a byte-level model to learn: spelling, agreement (he/she/they with
the character), balanced quotes, numbered titles, and names invented per fable
that recur within it (copying from context pays off).

Deterministic: Python's `random.Random(seed)` with fixed lists, so the same
seed writes identical bytes on every Python 3 version. The recipe ships the
output as eval/corpus.txt; tests check it matches this generator.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

DEFAULT_SEED = 1859
DEFAULT_BYTES = 280_000

ANIMALS = [
    "fox", "crow", "hare", "tortoise", "lion", "mouse", "wolf", "lamb", "goat", "heron", "frog", "owl",
    "badger", "otter", "stag", "sparrow", "bear", "beaver", "magpie", "weasel", "ant", "grasshopper",
    "cat", "dog", "horse", "donkey", "swan", "eagle", "mole", "squirrel", "pig", "rooster", "snake", "bee",
]
ADJECTIVES = [
    "clever", "foolish", "proud", "humble", "hungry", "tired", "greedy", "gentle", "old", "young", "quick",
    "slow", "brave", "timid", "vain", "patient", "lazy", "busy", "honest", "sly", "kind", "stubborn", "wise",
    "cheerful", "grumpy", "small", "great", "restless", "curious", "careful",
]
PLACES = [
    "at the edge of the forest", "beside a quiet river", "under an old oak", "in a field of barley",
    "near the mill", "on a windy hill", "by the village well", "in a hollow log", "among the reeds",
    "behind the farmer's barn", "at the foot of the mountain", "in a garden full of cabbages",
]
TIMES = ["morning", "evening", "summer day", "winter night", "rainy afternoon", "spring morning", "autumn day"]
FOODS = ["a piece of cheese", "a ripe pear", "a bunch of grapes", "a handful of acorns", "a loaf of bread",
         "a jar of honey", "some barley", "a fat worm", "a basket of apples", "a golden plum"]
THINGS = ["a shining pebble", "a silver bell", "a bright feather", "a little boat", "a map of the valley",
          "an old key", "a red ribbon", "a wooden flute", "a lantern", "a heavy stone"]
NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"]
UNITS = ["days", "nights", "hours", "weeks", "miles", "steps"]
SYLLABLES = ["ba", "bel", "co", "da", "dor", "el", "fa", "fin", "ga", "hal", "is", "ka", "lin", "lo", "ma", "mir",
             "na", "nor", "o", "pa", "per", "ri", "ros", "sa", "sel", "ta", "tor", "u", "va", "wen", "ya", "zel"]
ENDINGS = {"she": ["a", "ette", "ina", "elle", "ia"], "he": ["o", "an", "ek", "us", "in"], "they": ["i", "en", "is"]}

# Verbs: (present 3rd singular, present plural, past).
VERBS_SOLO = [
    ("sleeps", "sleep", "slept"), ("sings", "sing", "sang"), ("waits", "wait", "waited"),
    ("runs", "run", "ran"), ("laughs", "laugh", "laughed"), ("wanders", "wander", "wandered"),
    ("thinks", "think", "thought"), ("weeps", "weep", "wept"), ("boasts", "boast", "boasted"),
]
MORALS = [
    "Slow and steady wins the race.", "Pride goes before a fall.", "A friend in need is a friend indeed.",
    "Do not count your eggs before they hatch.", "Look before you leap.", "Little by little does the trick.",
    "Flattery is not to be trusted.", "Those who plan ahead do not go hungry.", "Kindness is never wasted.",
    "Greed often overreaches itself.", "It is easy to be brave from a safe distance.",
    "Appearances are often deceiving.", "Honesty is the best policy.", "United we stand, divided we fall.",
    "Every bird loves to hear itself sing.", "The least may help the greatest.",
]
ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def roman(n: int) -> str:
    """Roman numeral of 1 <= n < 400."""
    out = ""
    for value, sym in ((100, "C"), (90, "XC"), (50, "L"), (40, "XL"), (10, "X")):
        while n >= value:
            out, n = out + sym, n - value
    return out + (ROMAN[n - 1] if n else "")


class Fabulist:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def pick(self, items):
        return items[self.r.randrange(len(items))]

    def name(self, pronoun: str) -> str:
        parts = [self.pick(SYLLABLES) for _ in range(1 + self.r.randrange(2))]
        return ("".join(parts) + self.pick(ENDINGS[pronoun])).capitalize()

    def character(self) -> dict:
        pronoun = self.pick(["he", "she", "she", "he", "they"])
        return {
            "name": self.name(pronoun),
            "animal": self.pick(ANIMALS),
            "adj": self.pick(ADJECTIVES),
            "p": pronoun,
            "obj": {"he": "him", "she": "her", "they": "them"}[pronoun],
            "pos": {"he": "his", "she": "her", "they": "their"}[pronoun],
        }

    def subject(self, c: dict) -> str:
        roll = self.r.random()
        if roll < 0.45:
            return c["name"]
        if roll < 0.8:
            return c["p"].capitalize()
        return f"The {c['animal']}"

    def sentence(self, a: dict, b: dict, place: str) -> str:
        s, t = self.subject(a), b["name"]
        verb = self.pick(VERBS_SOLO)
        templates = [
            lambda: f"{s} {verb[2]} {self.pick(PLACES)} for {self.pick(NUMBERS)} {self.pick(UNITS)}.",
            lambda: f"{s} found {self.pick(FOODS)} and hid it {self.pick(PLACES)}.",
            lambda: f"{s} asked {t} for {self.pick(THINGS)}, but {b['p']} said no.",
            lambda: f"Every {self.pick(TIMES)} {a['name']} {verb[0] if a['p'] != 'they' else verb[1]} {place}.",
            lambda: f"{s} {'were' if s == 'They' else 'was'} {self.pick(ADJECTIVES)}, and {t} knew it.",
            lambda: f"So {a['name']} carried {self.pick(THINGS)} all the way to {t}.",
            lambda: f"Then {s.lower() if s in ('He', 'She', 'They') else s} {verb[2]}, and {b['p']} {verb[2]} too.",
            lambda: f"{t} gave {a['obj']} {self.pick(FOODS)} in exchange for {self.pick(THINGS)}.",
            lambda: f"{s} counted {self.pick(NUMBERS)} {self.pick(['stars', 'clouds', 'geese', 'stones'])} "
                    f"and fell asleep.",
        ]
        return self.pick(templates)()

    def speech(self, a: dict, b: dict) -> str:
        said = self.pick(["said", "cried", "asked", "whispered", "called", "replied"])
        q = said == "asked"
        lines = [
            f"Where are you going, {b['name']}?" if q else f"I am going {self.pick(PLACES)}",
            f"Will you share {self.pick(FOODS)} with me?" if q else f"I have {self.pick(FOODS)} for you",
            f"Why are you so {self.pick(ADJECTIVES)}?" if q else f"You are very {self.pick(ADJECTIVES)}, {b['name']}",
            f"How many {self.pick(UNITS)} until spring?" if q else f"Wait {self.pick(NUMBERS)} {self.pick(UNITS)}",
        ]
        line = self.pick(lines)
        end = "" if line.endswith("?") else self.pick([",", "!"])
        mark = "" if end == "" else end
        if mark == "!":
            return f'"{line}!" {said} {a["name"]}.'
        return f'"{line}{mark}" {said} {a["name"]}.'

    def fable(self, number: int) -> str:
        a, b = self.character(), self.character()
        while b["animal"] == a["animal"]:
            b = self.character()
        place = self.pick(PLACES)
        title = f"{roman(number)}. THE {a['animal'].upper()} AND THE {b['animal'].upper()}"
        lines = [
            f"Once upon a time there was {article(a['adj'])} {a['adj']} {a['animal']} called {a['name']}, "
            f"who lived {place}.",
            f"One {self.pick(TIMES)} {a['name']} met {b['name']}, {article(b['adj'])} {b['adj']} {b['animal']}.",
        ]
        for _ in range(3 + self.r.randrange(5)):
            lines.append(self.speech(a, b) if self.r.random() < 0.4 else self.sentence(a, b, place))
            if self.r.random() < 0.25:
                a, b = b, a  # the other one acts
        lines.append(f"In the end the {b['animal']} and the {a['animal']} went home.")
        body = " ".join(lines)
        return f"{title}\n\n{body}\n\nMoral: {self.pick(MORALS)}\n\n"


def generate(n_bytes: int = DEFAULT_BYTES, seed: int = DEFAULT_SEED) -> str:
    """At least `n_bytes` of fables (ASCII), cut at a fable boundary."""
    fab, parts, size, number = Fabulist(seed), [], 0, 1
    while size < n_bytes:
        text = fab.fable(number)
        parts.append(text)
        size += len(text)
        number += 1
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parents[1] / "eval" / "corpus.txt"))
    parser.add_argument("--bytes", type=int, default=DEFAULT_BYTES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    text = generate(args.bytes, args.seed)
    Path(args.out).write_text(text, encoding="ascii", newline="\n")
    print(f"wrote {len(text)} bytes to {args.out}")


if __name__ == "__main__":
    main()
