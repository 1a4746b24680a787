#!/usr/bin/env python3
"""Generate the synthetic multi-task review sample: data/sample/reviews.jsonl.

Standard library only, deterministic (fixed seed): re-running gives
byte-identical output.

    python3 data/sample/generate.py            # writes reviews.jsonl next to this file
    python3 data/sample/generate.py --out X    # writes somewhere else

Every row is built as a list of (token, BIO tag) pairs, so `ner` always has one
tag per token of `text.split()`.  Mess (HTML entities and tags, URLs, odd
whitespace, zero-width spaces, non-NFC text) is added inside tokens or between
them, never changing the whitespace token count, except in the deliberately
broken rows (wrong tag count, standalone markup token, malformed JSON).
See data/README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import unicodedata
from collections import Counter
from pathlib import Path
from random import Random

SEED = 20240611
N_BASE = 680  # generated reviews; derived/extra rows are added on top

# Counts of deliberate mess.
N_HTML_ENTITY = 40
N_HTML_TAG = 32
N_URL = 20
N_WHITESPACE = 36
N_NEWLINE = 8
N_ZWSP = 6
N_NON_NFC = 6
N_EXACT_DUP = 20
N_NEAR_DUP = 15
N_CONFLICT = 3
N_EMPTY = 5
N_UNLABELLED = 5
N_PARTIAL = 15
N_BAD_NER_LEN = 3
N_STANDALONE_MARKUP = 2

SENTIMENTS = ["negative", "neutral", "positive"]
SENTIMENT_WEIGHTS = [35, 25, 40]
TOPICS = ["battery", "screen", "shipping", "customer_service", "price", "sound", "camera"]
TOPIC_WEIGHTS = [17, 14, 17, 15, 15, 12, 10]
ALL_CATS = None  # template usable with every device category

# --------------------------------------------------------------------------
# Catalogue: category -> (item noun, plural noun, price range, [(brand, product)])
# --------------------------------------------------------------------------
CATALOG = {
    "phone": ("phone", "phones", (199, 1199), [
        ("Samsung", "Galaxy S21"), ("Samsung", "Galaxy A52"), ("Apple", "iPhone 13"),
        ("Apple", "iPhone 12 mini"), ("Google", "Pixel 6"), ("Google", "Pixel 7a"),
        ("Xiaomi", "Redmi Note 10"), ("Motorola", "Moto G Power"), ("Sony", "Xperia 5 II"),
    ]),
    "laptop": ("laptop", "laptops", (399, 2199), [
        ("Lenovo", "ThinkPad X1 Carbon"), ("Lenovo", "IdeaPad 5"), ("Lenovo", "Yoga Slim 7"),
        ("Apple", "MacBook Air"), ("Apple", "MacBook Pro 14"), ("Dell", "XPS 13"),
        ("Dell", "Inspiron 15"), ("HP", "Spectre x360"), ("Asus", "ZenBook 14"),
        ("Asus", "ROG Zephyrus G14"), ("Acer", "Swift 3"), ("Microsoft", "Surface Laptop 4"),
    ]),
    "tablet": ("tablet", "tablets", (99, 899), [
        ("Apple", "iPad Air"), ("Samsung", "Galaxy Tab S7"), ("Amazon", "Fire HD 10"),
        ("Lenovo", "Tab P11"), ("Microsoft", "Surface Pro 8"),
    ]),
    "headset": ("headset", "headsets", (39, 549), [
        ("Sony", "WH-1000XM4"), ("Sony", "WF-1000XM4"), ("Bose", "QuietComfort 45"),
        ("Bose", "QC35 II"), ("Apple", "AirPods Pro"), ("Apple", "AirPods Max"),
        ("Sennheiser", "Momentum 4"), ("Jabra", "Elite 75t"), ("Samsung", "Galaxy Buds Pro"),
        ("Beats", "Studio3"), ("Anker", "Soundcore Life Q30"),
    ]),
    "speaker": ("speaker", "speakers", (29, 399), [
        ("JBL", "Flip 5"), ("JBL", "Charge 4"), ("Bose", "SoundLink Mini II"),
        ("Ultimate Ears", "Boom 3"), ("Anker", "Soundcore Motion+"), ("Marshall", "Emberton"),
    ]),
    "powerbank": ("power bank", "power banks", (19, 129), [
        ("Anker", "PowerCore 10000"), ("Anker", "PowerCore III Elite"),
        ("Mophie", "Powerstation XL"), ("Belkin", "BoostCharge 20K"),
    ]),
    "tv": ("TV", "TVs", (299, 2499), [
        ("Samsung", "QN90A"), ("LG", "C1 OLED"), ("Sony", "Bravia X90J"),
        ("TCL", "6-Series"), ("Hisense", "U8G"),
    ]),
    "monitor": ("monitor", "monitors", (129, 999), [
        ("Dell", "UltraSharp U2720Q"), ("LG", "27GL850"), ("Asus", "ProArt PA278QV"),
        ("Samsung", "Odyssey G7"), ("BenQ", "PD2700U"),
    ]),
    "watch": ("watch", "watches", (79, 799), [
        ("Apple", "Watch Series 7"), ("Garmin", "Forerunner 245"), ("Fitbit", "Charge 5"),
        ("Samsung", "Galaxy Watch 4"),
    ]),
    "ereader": ("e-reader", "e-readers", (79, 249), [
        ("Amazon", "Kindle Paperwhite"), ("Kobo", "Clara HD"),
    ]),
}

TOPIC_CATS = {
    "battery": ["phone", "laptop", "tablet", "headset", "speaker", "powerbank", "watch", "ereader"],
    "screen": ["phone", "laptop", "tablet", "tv", "monitor", "watch", "ereader"],
    "camera": ["phone", "phone", "phone", "tablet"],
    "sound": ["headset", "headset", "speaker", "speaker", "tv", "laptop", "phone"],
    "shipping": list(CATALOG),
    "customer_service": list(CATALOG),
    "price": list(CATALOG),
}

LOCATIONS = [
    "Chicago", "New Zealand", "Toronto", "Berlin", "New York", "San Francisco", "Los Angeles",
    "Hong Kong", "South Korea", "Australia", "Canada", "Germany", "Texas", "Ohio", "London",
    "Manchester", "Dublin", "Madrid", "Zürich", "São Paulo", "Montréal", "Rio de Janeiro",
    "Mexico City", "Tokyo", "Singapore", "Mumbai", "Cape Town", "United Kingdom", "Sweden",
    "Poland", "Kraków", "Seattle", "Denver", "Austin", "Nairobi", "Lagos", "Auckland",
    "Melbourne", "Shenzhen", "Rotterdam",
]

PERSONS = [
    "Maria", "David Chen", "Priya", "Ahmed", "Sarah Johnson", "Kenji", "Luis Garcia", "Emma",
    "Olga Petrova", "Tom", "Jessica", "Fatima", "Carlos", "Anna Kowalski", "James", "Zoë",
    "José Martínez", "Chloé", "Liam O'Brien", "Mei Lin", "Raj Patel", "Grace", "Ben", "Kevin",
    "Aisha Bello", "Marco Rossi", "Hannah", "Noah Williams",
]

INTENSIFIERS = ["really", "very", "super", "so", "incredibly", "extremely", "pretty", "", ""]

# --------------------------------------------------------------------------
# Core sentences per (topic, sentiment).  Entry: text or (text, [categories]).
# Slots: {DEV} device reference, {BRAND}, {ITEM}, {ITEMS}, {LOC}, {PERSON},
# {N} small count, {DAYS}, {WEEKS}, {HOURS}, {MIN}, {PCT}, {PRICE}, {PRICE2}
# (a lower price), {INT} optional intensifier (may be empty).
# --------------------------------------------------------------------------
HEADSET = ["headset"]
AUDIO_OUT = ["laptop", "tv", "phone", "speaker"]
CHARGEABLE = ["phone", "laptop", "tablet", "headset", "watch", "speaker"]
BIG_SCREENS = ["phone", "laptop", "tablet", "tv", "monitor"]

CORE = {
    ("battery", "negative"): [
        "The {DEV} battery dies by noon and charging takes forever.",
        "Battery on my {DEV} drains {INT} fast, barely {HOURS} hours of use.",
        "after {DAYS} days the battery on this {DEV} already won't hold a charge",
        "My {DEV} goes from 100% to 20% in a couple of hours, terrible battery.",
        "Battery life is a joke. I have to charge the {DEV} twice a day.",
        ("The {DEV} gets hot while charging and still loses {PCT} overnight doing nothing.", CHARGEABLE),
        "Honestly the worst battery I've had, the {DEV} shuts off at 30%.",
        "Nowhere near the advertised battery life, it barely lasts {HOURS} hours.",
        "The battery started swelling after {WEEKS} weeks, that's dangerous.",
        "I expected better battery life from {BRAND}, this {ITEM} can't even last a workday.",
        "Great, the {DEV} battery died again after {WEEKS} weeks. Just great.",
        ("Nice screen, but the battery on the {DEV} is useless and dies within {HOURS} hours.", ["phone", "laptop", "tablet", "watch"]),
        "Battery is not good at all, it barely lasts half a day.",
        "The so-called \"all-day\" battery on the {DEV} is empty by lunch.",
        ("The {DEV} only charges my phone once before it's empty, weak battery.", ["powerbank"]),
        "Charging is painfully slow and the battery drains faster than it fills.",
    ],
    ("battery", "neutral"): [
        "Battery on the {DEV} lasts about a day, which is what I expected.",
        "Battery life is okay, nothing special, roughly {HOURS} hours with normal use.",
        "The {DEV} battery is average. Gets me through the day if I don't push it.",
        "Charging takes around {N} hours. Battery is fine I guess.",
        "Battery is neither great nor terrible, about the same as my old {ITEM}.",
        "Holds a charge for about {HOURS} hours, decent but not the best.",
        "It's fine battery-wise; I charge the {DEV} every night anyway.",
        "Not bad, not great: the battery gets me to the evening most days.",
        "Battery drains a bit faster with heavy use, otherwise it's ok.",
        ("The {DEV} recharges my phone about {N} times, roughly as advertised.", ["powerbank"]),
        "Battery life seems normal for {AITEM} in this range.",
    ],
    ("battery", "positive"): [
        "Battery life on the {DEV} is {INT} amazing, easily {HOURS} hours.",
        "I only charge my {DEV} every {N} days, the battery is fantastic.",
        ("Fast charging works great, 0 to 80% in about {MIN} minutes.", CHARGEABLE),
        "The battery just keeps going! Took the {DEV} on a {N}-day trip with no charger.",
        "Battery is not bad at all, actually better than my old {ITEM}.",
        "Impressed with the battery on this {DEV}, it lasts all day and then some.",
        "{BRAND} nailed the battery, I never worry about charging the {DEV} anymore.",
        "Solid battery life, the {DEV} still has 40% left at bedtime.",
        "Can't complain about the battery at all, it easily lasts a full day.",
        ("The {DEV} charged my phone {N} times on a camping trip, great battery.", ["powerbank"]),
        "Battery life is way better than I expected, {INT} happy.",
    ],
    ("screen", "negative"): [
        "The screen on my {DEV} has a dead pixel right in the middle.",
        "Display is {INT} dim, I can't read anything outside.",
        "Screen cracked after a tiny drop, the {DEV} glass is way too fragile.",
        ("Terrible backlight bleed on the {DEV}, the corners glow in dark scenes.", ["laptop", "tv", "monitor"]),
        ("The touchscreen on the {DEV} randomly stops responding, super frustrating.", ["phone", "tablet", "watch", "ereader"]),
        "Colors look washed out and the {DEV} screen flickers at low brightness.",
        "Screen started showing a green line after {WEEKS} weeks. Not acceptable.",
        "I returned the {DEV} because the display had an ugly yellow tint.",
        "The {DEV} screen is so reflective it's basically a mirror next to a window.",
        "Display is not sharp at all, text looks fuzzy on the {DEV}.",
        "Lovely design, shame about the screen, it scratches if you look at it.",
    ],
    ("screen", "neutral"): [
        "The {DEV} screen is okay, a bit dim but fine indoors.",
        "Display is decent for the price, not as sharp as I hoped.",
        "Screen is average, colors are a little cool out of the box.",
        "The \"vivid\" display mode on the {DEV} is fine, nothing more.",
        "The {DEV} display does the job. Nothing to write home about.",
        "Resolution is fine, brightness is just ok, viewing angles are so-so.",
        "Not sure how I feel about the screen yet, it's fine for reading.",
        "The screen is alright, some glare outdoors but usable.",
        "Display looks about the same as my old {ITEM}, no big upgrade.",
    ],
    ("screen", "positive"): [
        "The screen on the {DEV} is gorgeous, colors really pop.",
        "Crisp, bright display, I can read it even in direct sunlight.",
        ("Watching movies on the {DEV} is a treat, the screen is {INT} sharp.", BIG_SCREENS),
        ("Best display I've owned, the blacks on this {DEV} are incredible.", BIG_SCREENS),
        "The {DEV} screen is smooth and responsive, scrolling feels great.",
        "Not bad at all, the display is honestly better than on my old {ITEM}.",
        "Love the screen! Text is razor sharp and my eyes don't get tired.",
        "The display on this {DEV} is {INT} bright and the colors are spot on.",
    ],
    ("shipping", "negative"): [
        "Shipping took {DAYS} days to {LOC} and the box arrived crushed.",
        "Ordered the {DEV} on Monday, it was stuck in {LOC} for {WEEKS} weeks.",
        "The package was sent to {LOC} by mistake and nobody could tell me where it went.",
        "Delivery was a nightmare, tracking said delivered but nothing ever showed up.",
        "My order sat in a warehouse in {LOC} for {DAYS} days with zero updates.",
        "Arrived {DAYS} days late and the {ITEM} box was open and damaged.",
        "Paid for express shipping to {LOC} and it still took over a week.",
        "Worst delivery experience ever, the courier left the {DEV} in the rain.",
        "So much for \"fast\" shipping, {DAYS} days and still no package.",
        "The {DEV} itself is fine but shipping was {INT} slow, it went through {LOC} twice.",
    ],
    ("shipping", "neutral"): [
        "Shipping to {LOC} took about {DAYS} days, roughly what they estimated.",
        "The {DEV} arrived on time, packaging was basic but nothing was broken.",
        "Delivery was ok. It came from {LOC} so a few days was expected.",
        "Package arrived in {DAYS} days, tracking was a bit vague.",
        "Shipped from {LOC}, took a little longer than expected but it got here.",
        "Standard shipping, standard box, nothing special to report.",
        "Delivery to {LOC} was fine, the courier just left it at the door.",
    ],
    ("shipping", "positive"): [
        "Super fast shipping! Ordered the {DEV} Monday and had it in {LOC} by Wednesday.",
        "Arrived in just {DAYS} days all the way to {LOC}, well packed too.",
        "Delivery was quick and the {ITEM} was packed really carefully.",
        "Shipping was faster than promised, got it a day early in {LOC}.",
        "Great packaging, great delivery, the {DEV} arrived in perfect condition.",
        "Impressed that it shipped from {LOC} and still got here in {DAYS} days.",
        "Shipping was not slow at all, the {DEV} was on my doorstep in {LOC} next morning.",
    ],
    ("customer_service", "negative"): [
        "Customer service was useless, {PERSON} kept me on hold for {MIN} minutes.",
        "Contacted support about my {DEV} {N} times and never got a real answer.",
        "The agent, {PERSON}, hung up on me twice. Terrible support.",
        "{BRAND} support refused to honor the warranty on my {ITEM}.",
        "Support told me to restart the {DEV} and then closed my ticket.",
        "I emailed customer service {N} times, no reply after {WEEKS} weeks.",
        "Rude staff. {PERSON} basically said it was my fault the {ITEM} broke.",
        "The Q&A page was more helpful than their support team, which says a lot.",
        "Support kept transferring me, {PERSON} then {PERSON2}, and nobody fixed anything.",
    ],
    ("customer_service", "neutral"): [
        "Support answered in about {DAYS} days, they were polite but didn't fix much.",
        "Talked to {PERSON} from support, the issue with my {DEV} is still being looked at.",
        "Customer service was fine, a bit slow, but they replied eventually.",
        "The chat agent {PERSON} gave me a standard answer, nothing more.",
        "Had to call {BRAND} support once, average experience overall.",
        "Support was okay. They sent a return form and that was it.",
    ],
    ("customer_service", "positive"): [
        "{PERSON} from support was amazing and sorted out my {DEV} in {MIN} minutes.",
        "Great customer service, {PERSON} sent a replacement the same day.",
        "Shoutout to {PERSON} at {BRAND} support, super helpful and patient.",
        "Support was quick and friendly, my {ITEM} issue was fixed right away.",
        "Customer service went above and beyond, they even covered the return label.",
        "Not bad at all, the support team actually called me back the next day.",
        "Had a problem with the {DEV} and {PERSON} walked me through the fix, {INT} helpful.",
    ],
    ("price", "negative"): [
        "Way overpriced at {PRICE}, you can get a better {ITEM} for half that.",
        "Paid {PRICE} for the {DEV} and a week later it dropped to {PRICE2}. Annoying.",
        "Not worth {PRICE}. The {DEV} feels cheap for what it costs.",
        "Way too expensive for what you get, {BRAND} is charging for the logo.",
        "Shipping & handling added {PRICE2} at checkout, total rip-off.",
        "For {PRICE} I expected a lot more from the {DEV}.",
        "So much for \"premium\", {PRICE} for this {ITEM} is a joke.",
        "The price is not fair at all compared to other {ITEMS}.",
    ],
    ("price", "neutral"): [
        "The {DEV} is priced about right at {PRICE}, fair but not a bargain.",
        "{PRICE} is a normal price for {AITEM} like this.",
        "It's ok for the money. Not cheap, not expensive.",
        "Price is fair I guess, similar to other {ITEMS}.",
        "Got the {DEV} for {PRICE} on sale, which seems about average.",
        "You get what you pay for at {PRICE}, no more, no less.",
    ],
    ("price", "positive"): [
        "Great value for {PRICE}, the {DEV} feels like a far pricier {ITEM}.",
        "Got the {DEV} on sale for {PRICE}, absolute steal!",
        "For the price you really can't beat the {DEV}.",
        "Cheaper than the competition and honestly just as good.",
        "Worth every penny of the {PRICE} I paid.",
        "Not bad for {PRICE}, actually a really good deal.",
        "Fast & cheap, what more do you want for {PRICE}?",
        "{BRAND} priced this {ITEM} {INT} well, great bang for the buck.",
    ],
    ("sound", "negative"): [
        "The sound on the {DEV} is tinny and distorts at high volume.",
        "Bass is basically nonexistent, the {DEV} sounds hollow.",
        "Audio keeps cutting out and crackling on the {DEV}.",
        ("Speakers are muffled, I can barely hear dialogue.", ["laptop", "tv", "phone"]),
        ("Noise cancelling barely works on the {DEV} and there's a constant hiss.", HEADSET),
        "Volume maxes out way too low, {INT} disappointing sound.",
        "Sound quality is not good at all, everything sounds flat.",
    ],
    ("sound", "neutral"): [
        "Sound is ok for the price, a bit light on bass.",
        "The {DEV} sounds decent, nothing audiophile level.",
        "Audio is average, fine for podcasts and calls.",
        "Sound quality is acceptable but the max volume could be higher.",
        "Not bad sound, not great either, mids are a little muddy.",
        ("Noise cancelling on the {DEV} is okay, it takes the edge off but that's it.", HEADSET),
    ],
    ("sound", "positive"): [
        "The sound on the {DEV} is {INT} rich and clear, bass is punchy.",
        "Amazing audio, I hear details in songs I never noticed before.",
        ("Noise cancelling on the {DEV} is fantastic, total silence on the train.", HEADSET),
        "Crystal clear sound and the volume gets really loud without distortion.",
        "Best sounding {ITEM} I've owned, worth it for the audio alone.",
        "Sound is not bad at all, honestly better than my old {ITEM}.",
    ],
    ("camera", "negative"): [
        "The camera on the {DEV} takes blurry photos in anything but daylight.",
        "Photos come out grainy and the focus hunts constantly.",
        "Camera app crashes half the time, and low light shots are awful.",
        "Front camera is washed out, video calls look terrible.",
        "The {DEV} camera is a big step down from my old {ITEM}, photos look muddy.",
        "Zoom is useless, anything past 2x is a smeary mess.",
    ],
    ("camera", "neutral"): [
        "Camera is fine for daylight shots, struggles a bit at night.",
        "The {DEV} camera is average, photos are okay for social media.",
        "Pictures are decent, nothing like the ads but acceptable.",
        "Video is smooth, photos are just ok.",
        "Camera does the job, portrait mode is hit or miss.",
    ],
    ("camera", "positive"): [
        "The camera on the {DEV} is incredible, night mode is unreal.",
        "Photos are sharp and colors look natural, {INT} happy with the camera.",
        "Portrait mode on the {DEV} is great, my family pics look professional.",
        "Not bad at all, the camera actually beats my old {ITEM}.",
        "Took the {DEV} on holiday to {LOC} and the photos came out stunning.",
    ],
}

OPENERS = {
    "any": [
        "Honestly,", "Update:", "Ok so", "So", "Well,", "Bought this for my son.",
        "Bought this as a gift.", "Second one I've bought.", "Long time {BRAND} user here.",
        "First impressions:", "tbh", "Edit:", "Quick review:", "As a student,",
        "Used it for {WEEKS} weeks now.", "Alright,", "Hmm.", "Review after {DAYS} days:",
    ],
    "negative": ["Ugh.", "Sigh.", "Wow, no.", "Buyer beware:"],
    "neutral": ["Mixed feelings.", "Meh.", "Not sure yet.", "It's fine, I guess."],
    "positive": ["Wow!", "Love it!", "Pleasantly surprised.", "Happy customer here."],
}

SIDE_REMARKS = {
    "negative": [
        "The design is nice at least.", "Looks good though.", "Build quality feels ok, for what it's worth.",
        "At least the color is nice.",
    ],
    "neutral": [
        "Design is nice.", "Build quality feels solid.", "The color is a bit different from the photos.",
        "Setup was easy.", "Setup was quick & painless.",
    ],
    "positive": [
        "Build quality feels solid too.", "Setup took {N} minutes.", "Only complaint is the color options.",
        "Looks great on my desk as well.", "Setup was quick & easy.",
    ],
}

EXTRAS = {
    "negative": [
        "Returning it.", "Would not recommend.", "Really disappointed.", "Never buying {BRAND} again.",
        "Save your money.", "Two stars is generous.", "What a waste.", "Avoid.", "I want a refund.",
        "Regret this purchase.", "Not happy at all.", "Returned it & bought another brand.", "One star.", "Very frustrating experience overall.",
    ],
    "neutral": [
        "It's fine.", "Might keep it, might not.", "Does the job.", "Three stars.", "Ok overall.",
        "We'll see how it holds up.", "Nothing more to say.", "Mixed feelings overall.",
        "Average product.", "It is what it is.", "Could be better, could be worse.",
    ],
    "positive": [
        "Highly recommend!", "Would buy again.", "Five stars.", "Love it.",
        "Very happy with this purchase.", "My wife loves it too.", "Totally worth it.", "No regrets.",
        "10/10.", "Would definitely recommend.", "Couldn't be happier.",
    ],
}
CONNECTORS = ["Overall,", "Anyway,", "All in all,", "In short,", "Bottom line:"]

EMOTICONS = {
    "negative": [":(", ":/", ">:(", ":-(", "\U0001F621", "\U0001F44E"],
    "neutral": [":|", "\u00af\\_(\u30c4)_/\u00af", ":-/", "\U0001F610"],
    "positive": [":)", ":D", ":-)", ";)", "<3", "\U0001F44D", "\U0001F642"],
}

MISSPELL = {
    "received": "recieved", "definitely": "definately", "disappointed": "dissapointed",
    "the": "teh", "really": "realy", "battery": "batery", "because": "becuase",
    "expected": "expcted", "quality": "qualtiy", "arrived": "arived", "until": "untill",
    "which": "wich", "screen": "sreen", "shipping": "shiping", "recommend": "reccomend",
    "terrible": "terible", "amazing": "amazng", "price": "prcie", "support": "suport",
    "delivery": "delivary", "camera": "camra", "sound": "soudn", "it's": "its",
    "can't": "cant", "don't": "dont", "won't": "wont", "I've": "Ive",
}

URLS = [
    "https://shop.example.com/item/{n}", "www.example.org/help", "https://example.net/r/{n}",
    "http://support.example.com/ticket/{n}", "https://www.example.com/p/{n}?ref=review",
    "example.org/returns", "https://go.example.net/{n}",
]
URL_LEADS = [[], [], ["Link:"], ["see"], ["More", "at"], ["Product", "page:"]]

HTML_TAGS = ["b", "i", "em", "strong", "u"]

SLOT_RE = re.compile(r"\{([A-Z0-9]+)\}")


# --------------------------------------------------------------------------
# Row building
# --------------------------------------------------------------------------
class Row:
    """A review as parallel token/tag lists plus rendering details."""

    def __init__(self, tokens, tags, sentiment, topic):
        self.tokens = tokens
        self.tags = tags
        self.sentiment = sentiment
        self.topic = topic
        self.seps = [" "] * max(len(tokens) - 1, 0)
        self.lead = ""
        self.trail = ""
        self.drop = []          # label keys left out
        self.null = []          # label keys present as JSON null
        self.mess = []          # mess categories applied (for the summary)
        self.text_override = None
        self.raw_line = None    # malformed JSON line

    def text(self):
        if self.text_override is not None:
            return self.text_override
        parts = [self.lead]
        for i, tok in enumerate(self.tokens):
            parts.append(tok)
            if i < len(self.seps):
                parts.append(self.seps[i])
        parts.append(self.trail)
        return "".join(parts)

    def to_obj(self, rid):
        obj = {"id": rid, "text": self.text()}
        labels = (
            ("sentiment", "sentiment", self.sentiment),
            ("topic", "topic", self.topic),
            ("ner", "ner", self.tags),
            # derived labels follow the presence of the label they come from
            ("stars", "sentiment", self.stars()),
            ("aspects", "topic", self.aspects()),
        )
        for key, source, val in labels:
            if source in self.drop:
                continue
            obj[key] = None if source in self.null else val
        if "bad_stars" in self.mess:
            obj["stars"] = "five"
        return obj

    def stars(self):
        """A 1-5 rating that follows the sentiment, with a stable jitter
        taken from the word count (no RNG draw, so other rows do not change;
        near duplicates keep their word count, so they keep their rating)."""
        if self.sentiment is None:
            return None
        h = len(self.tokens)
        base = {"negative": 1.5, "neutral": 3.0, "positive": 4.5}[self.sentiment]
        return base + ((h % 5) - 2) * 0.25

    def aspects(self):
        """Every aspect the review talks about: its topic plus any other
        aspect whose keywords appear in the words (possibly none else)."""
        if self.topic is None:
            return None
        words = " ".join(self.tokens).lower()
        found = {self.topic} if self.topic in ASPECT_KEYWORDS else set()
        for aspect, keys in ASPECT_KEYWORDS.items():
            if any(k in words for k in keys):
                found.add(aspect)
        return sorted(found)


# Keywords that put an aspect on a review (the `aspects` multilabel task).
ASPECT_KEYWORDS = {
    "battery": ("battery", "charge", "charging"),
    "screen": ("screen", "display", "brightness"),
    "shipping": ("shipping", "shipped", "deliver", "arrived", "package"),
    "customer_service": ("support", "refund", "service", "replacement"),
    "price": ("price", "$", "cost", "cheap", "expensive", "worth"),
    "sound": ("sound", "audio", "bass", "volume"),
    "camera": ("camera", "photo", "picture"),
}


class Generator:
    def __init__(self, seed):
        self.rng = Random(seed)

    # -- slot expansion ----------------------------------------------------
    def price(self, cat, lower_than=None):
        lo, hi = CATALOG[cat][2]
        r = self.rng
        if lower_than is not None:
            val = max(5, int(lower_than * r.uniform(0.55, 0.85)))
        else:
            val = r.randint(lo, hi)
        if val > 100:
            val = val - val % 10 + 9
        style = r.random()
        if style < 0.55:
            s = f"${val:,}"
        elif style < 0.8:
            s = f"${val:,}.99"
        elif style < 0.9:
            s = f"{val}$"
        else:
            s = f"${val}.00"
        return s, val

    def expand(self, slot, ctx):
        """Return list of (token, tag) for one slot (may be empty)."""
        r = self.rng
        brand, product, cat = ctx["device"]
        item, items = CATALOG[cat][0], CATALOG[cat][1]

        def ent(text, label):
            toks = text.split()
            return [(t, ("B-" if i == 0 else "I-") + label) for i, t in enumerate(toks)]

        if slot == "DEV":
            f = r.random()
            if f < 0.38:
                return ent(brand, "BRAND") + ent(product, "PRODUCT")
            if f < 0.72:
                return ent(product, "PRODUCT")
            if f < 0.88:
                return ent(brand, "BRAND") + [(t, "O") for t in item.split()]
            return [(t, "O") for t in item.split()]
        if slot == "BRAND":
            return ent(brand, "BRAND")
        if slot == "ITEM":
            return [(t, "O") for t in item.split()]
        if slot == "AITEM":
            art = "an" if item[0].lower() in "aeiou" else "a"
            return [(art, "O")] + [(t, "O") for t in item.split()]
        if slot == "ITEMS":
            return [(t, "O") for t in items.split()]
        if slot == "LOC":
            return ent(ctx["loc"], "LOC")
        if slot == "PERSON":
            return ent(ctx["person"], "PERSON")
        if slot == "PERSON2":
            return ent(ctx["person2"], "PERSON")
        if slot == "N":
            return [(str(r.randint(2, 5)), "O")]
        sent = ctx["sentiment"]  # numbers that fit the sentiment
        if slot == "DAYS":
            pool = {"positive": [2, 2, 3, 3, 4], "neutral": [3, 4, 5, 6, 7, 8],
                    "negative": [6, 8, 9, 10, 12, 14, 17, 21]}[sent]
            return [(str(r.choice(pool)), "O")]
        if slot == "WEEKS":
            return [(str(r.randint(2, 8)), "O")]
        if slot == "HOURS":
            pool = {"positive": [10, 12, 14, 18, 20, 24, 30, 40], "neutral": [6, 7, 8, 9, 10],
                    "negative": [2, 3, 4, 5]}[sent]
            return [(str(r.choice(pool)), "O")]
        if slot == "MIN":
            pool = {"positive": [10, 15, 20, 25, 30, 35], "neutral": [20, 30, 45],
                    "negative": [45, 50, 60, 75, 90, 120]}[sent]
            return [(str(r.choice(pool)), "O")]
        if slot == "PCT":
            return [(f"{r.choice([10, 15, 20, 25, 30, 40])}%", "O")]
        if slot == "PRICE":
            return [(ctx["price"][0], "O")]
        if slot == "PRICE2":
            return [(ctx["price2"][0], "O")]
        if slot == "INT":
            w = r.choice(INTENSIFIERS)
            return [(w, "O")] if w else []
        raise KeyError(slot)

    def render_template(self, template, ctx):
        out = []
        for piece in template.split():
            m = SLOT_RE.search(piece)
            if not m:
                out.append((piece, "O"))
                continue
            assert len(SLOT_RE.findall(piece)) == 1, piece
            pre, post = piece[: m.start()], piece[m.end():]
            exp = self.expand(m.group(1), ctx)
            if not exp:
                assert not pre and not post, template
                continue
            exp = list(exp)
            exp[0] = (pre + exp[0][0], exp[0][1])
            exp[-1] = (exp[-1][0] + post, exp[-1][1])
            out.extend(exp)
        return out

    # -- surface variation ---------------------------------------------------
    def vary_end(self, sent, sentiment):
        """Vary sentence-final punctuation of one sentence (list of pairs)."""
        r = self.rng
        tok, tag = sent[-1]
        if not tok.endswith(".") or tok.endswith("..."):
            return sent
        x = r.random()
        if sentiment != "neutral" and x < 0.12:
            new = tok[:-1] + "!"
        elif sentiment != "neutral" and x < 0.16:
            new = tok[:-1] + "!!"
        elif x < 0.23:
            new = tok[:-1] + "..."
        elif x < 0.33:
            new = tok[:-1]
        else:
            new = tok
        if not new:
            return sent
        return sent[:-1] + [(new, tag)]

    def typo(self, word):
        r = self.rng
        core = word.strip(".,!?;:\"")
        if core in MISSPELL or core.lower() in MISSPELL:
            rep = MISSPELL.get(core) or MISSPELL[core.lower()]
            if core[:1].isupper() and rep[:1].islower():
                rep = rep[0].upper() + rep[1:]
            return word.replace(core, rep, 1)
        if len(core) < 4 or not core.isalpha():
            return None
        start = word.index(core)
        i = r.randint(1, len(core) - 2)
        kind = r.randint(0, 2)
        if kind == 0:
            new = core[:i] + core[i + 1] + core[i] + core[i + 2:]
        elif kind == 1:
            new = core[:i] + core[i + 1:]
        else:
            new = core[:i] + core[i] + core[i:]
        return word[:start] + new + word[start + len(core):]

    def surface(self, pairs, sentiment):
        r = self.rng
        toks = [p[0] for p in pairs]
        tags = [p[1] for p in pairs]
        # typos on O tokens
        n_typos = 0
        x = r.random()
        if x < 0.03:
            n_typos = 2
        elif x < 0.15:
            n_typos = 1
        for _ in range(n_typos):
            cands = [i for i, t in enumerate(tags) if t == "O"]
            r.shuffle(cands)
            for i in cands:
                new = self.typo(toks[i])
                if new and new != toks[i]:
                    toks[i] = new
                    break
        # casing
        x = r.random()
        if x < 0.05:
            toks = [t.lower() for t in toks]
        elif x < 0.18 and toks[0][:1].isupper():
            toks[0] = toks[0][0].lower() + toks[0][1:]
        elif x < 0.22 and toks[0][:1].islower():
            toks[0] = toks[0][0].upper() + toks[0][1:]
        if r.random() < 0.04:
            cands = [i for i, t in enumerate(tags) if t == "O" and toks[i].isalpha() and len(toks[i]) > 3]
            if cands:
                i = r.choice(cands)
                toks[i] = toks[i].upper()
        return toks, tags

    # -- one review ----------------------------------------------------------
    def review(self):
        r = self.rng
        sentiment = r.choices(SENTIMENTS, SENTIMENT_WEIGHTS)[0]
        topic = r.choices(TOPICS, TOPIC_WEIGHTS)[0]
        want_entity = r.random() < 0.9
        for _attempt in range(60):
            pairs = self.try_review(topic, sentiment)
            n = len(pairs)
            if not 8 <= n <= 40:
                continue
            if want_entity and all(t == "O" for _, t in pairs):
                continue
            toks, tags = self.surface(pairs, sentiment)
            assert len(toks) == len(" ".join(toks).split()), toks
            return Row(toks, tags, sentiment, topic)
        raise RuntimeError("could not build review")

    def try_review(self, topic, sentiment):
        r = self.rng
        cat = r.choice(TOPIC_CATS[topic])
        cands = [t for t in CORE[(topic, sentiment)]
                 if isinstance(t, str) or cat in t[1]]
        tmpl = r.choice(cands)
        tmpl = tmpl if isinstance(tmpl, str) else tmpl[0]
        brand, product = r.choice(CATALOG[cat][3])
        p1 = self.price(cat)
        p2 = self.price(cat, lower_than=p1[1])
        person, person2 = r.sample(PERSONS, 2)
        ctx = {"device": (brand, product, cat), "loc": r.choice(LOCATIONS), "sentiment": sentiment,
               "person": person, "person2": person2, "price": p1, "price2": p2}
        sentences = []
        if r.random() < 0.3:
            pool = OPENERS["any"] + OPENERS[sentiment]
            sentences.append(self.render_template(r.choice(pool), ctx))
        core = self.vary_end(self.render_template(tmpl, ctx), sentiment)
        if sentences and not sentences[-1][-1][0].endswith((".", "!", "?", ":")):
            # "Honestly, the battery ..." rather than "Honestly, The battery ..."
            first, tag = core[0]
            if tag == "O" and first[:1].isupper() and first not in ("I", "I've", "I'm"):
                core[0] = (first[0].lower() + first[1:], tag)
        sentences.append(core)
        if r.random() < 0.15:
            sentences.append(self.vary_end(self.render_template(r.choice(SIDE_REMARKS[sentiment]), ctx), sentiment))
        if r.random() < 0.55:
            extra = self.render_template(r.choice(EXTRAS[sentiment]), ctx)
            if r.random() < 0.15:
                conn = r.choice(CONNECTORS)
                first = extra[0][0]
                if extra[0][1] == "O" and first[:1].isupper() and first not in ("I", "I've"):
                    first = first[0].lower() + first[1:]
                extra = [(w, "O") for w in conn.split()] + [(first, extra[0][1])] + extra[1:]
            sentences.append(self.vary_end(extra, sentiment))
        if r.random() < 0.09:
            sentences.append([(r.choice(EMOTICONS[sentiment]), "O")])
        return [p for s in sentences for p in s]


# --------------------------------------------------------------------------
# Mess
# --------------------------------------------------------------------------
ENTITY_CHARS = [("'", "&#39;"), ("&", "&amp;"), ('"', "&quot;"), ("<", "&lt;")]


def has_entity_char(row):
    return any(c in t for t in row.tokens for c, _ in ENTITY_CHARS)


def apply_html_entities(rng, row):
    idx = [i for i, t in enumerate(row.tokens) if any(c in t for c, _ in ENTITY_CHARS)]
    chosen = idx if rng.random() < 0.6 else rng.sample(idx, max(1, len(idx) // 2))
    for i in chosen:
        t = row.tokens[i].replace("&", "&amp;")  # first, so we don't re-escape
        for c, e in ENTITY_CHARS[:1] + ENTITY_CHARS[2:]:
            t = t.replace(c, e)
        row.tokens[i] = t
    row.mess.append("html_entity")


def split_punct(tok):
    m = re.match(r"^(.*?)([.,!?;:]*)$", tok, re.S)
    core, punct = m.group(1), m.group(2)
    if not core:
        return tok, ""
    return core, punct


def wrap_span(row, a, b, tag):
    """Wrap tokens a..b-1 in <tag>..</tag>, glued to the words (punctuation kept outside)."""
    core, punct = split_punct(row.tokens[b - 1])
    if b - a == 1:
        row.tokens[a] = f"<{tag}>{core}</{tag}>{punct}"
    else:
        row.tokens[a] = f"<{tag}>" + row.tokens[a]
        row.tokens[b - 1] = f"{core}</{tag}>{punct}"


def apply_html_tags(rng, row, form):
    """form 0: <p>..</p> around the review; 1-2: an entity span; 3: each token of a
    multi-token entity wrapped; 4-7: one to three ordinary words."""
    n = len(row.tokens)
    spans = []
    i = 0
    while i < n:  # entity spans
        if row.tags[i].startswith("B-"):
            j = i + 1
            while j < n and row.tags[j].startswith("I-"):
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    multi = [sp for sp in spans if sp[1] - sp[0] > 1]
    tag = rng.choice(HTML_TAGS)
    if form == 0:
        row.tokens[0] = "<p>" + row.tokens[0]
        row.tokens[-1] = row.tokens[-1] + "</p>"
    elif form == 3 and multi:
        a, b = rng.choice(multi)
        for k in range(a, b):  # <em>Galaxy</em> <em>S21</em>
            wrap_span(row, k, k + 1, tag)
    elif form in (1, 2, 3) and spans:
        a, b = rng.choice(spans)
        wrap_span(row, a, b, tag)  # <b>Galaxy S21</b>
    else:
        cands = [k for k in range(n) if row.tags[k] == "O" and split_punct(row.tokens[k])[0].isalpha()]
        if not cands:
            cands = list(range(n))
        a = rng.choice(cands)
        wrap_span(row, a, min(n, a + rng.choice([1, 1, 1, 2, 3])), tag)
    row.mess.append("html_tag")


def apply_url(rng, row, n):
    url = rng.choice(URLS).format(n=n)
    lead = rng.choice(URL_LEADS)
    add = lead + [url]
    if rng.random() < 0.25:
        add = ["(" + url + ")"] if not lead else add
    if rng.random() < 0.3 and len(row.tokens) > 4:
        # insert after the first sentence if there is one
        pos = next((i + 1 for i, t in enumerate(row.tokens[:-1]) if t.endswith((".", "!"))), len(row.tokens))
    else:
        pos = len(row.tokens)
    row.tokens[pos:pos] = add
    row.tags[pos:pos] = ["O"] * len(add)
    row.seps = [" "] * (len(row.tokens) - 1)
    row.mess.append("url")


def apply_whitespace(rng, row, newline=False):
    if not row.seps:
        return
    k = rng.randint(1, min(3, len(row.seps)))
    for i in rng.sample(range(len(row.seps)), k):
        row.seps[i] = rng.choice(["  ", "   ", "\t", " \t", "  \t "])
    if newline:
        i = rng.randrange(len(row.seps))
        row.seps[i] = rng.choice(["\n", " \n", "\n\n", "\n  "])
        row.mess.append("newline")
    else:
        if rng.random() < 0.5:
            row.lead = rng.choice([" ", "  ", "\t"])
        if rng.random() < 0.5:
            row.trail = rng.choice([" ", "   ", "\t", "\n"])
        row.mess.append("whitespace")


def apply_zwsp(rng, row):
    cands = [i for i, t in enumerate(row.tokens) if len(t) >= 4 and t.isalpha()]
    i = rng.choice(cands)
    t = row.tokens[i]
    k = rng.randint(1, len(t) - 1)
    row.tokens[i] = t[:k] + "\u200b" + t[k:]
    row.mess.append("zero_width")


def apply_non_nfc(rng, row):
    idx = [i for i, t in enumerate(row.tokens) if unicodedata.normalize("NFD", t) != t]
    for i in idx:
        row.tokens[i] = unicodedata.normalize("NFD", row.tokens[i])
    row.mess.append("non_nfc")


def flip_first_case(row):
    t = row.tokens[0]
    for k, ch in enumerate(t):
        if ch.isalpha():
            nch = ch.lower() if ch.isupper() else ch.upper()
            row.tokens[0] = t[:k] + nch + t[k + 1:]
            return True
    return False


def entity_swap(row):
    """Swap one character for its HTML entity, or an entity back to plain."""
    for i, t in enumerate(row.tokens):
        for c, e in ENTITY_CHARS:
            if e in t:
                row.tokens[i] = t.replace(e, c, 1)
                return True
    for i, t in enumerate(row.tokens):
        for c, e in ENTITY_CHARS[:3]:  # never escape the "<" of an HTML tag
            if c in t and "&" not in t:
                row.tokens[i] = t.replace(c, e, 1)
                return True
    return False


# --------------------------------------------------------------------------
def build(seed=SEED):
    gen = Generator(seed)
    rng = gen.rng
    base = []
    seen = set()
    while len(base) < N_BASE:
        row = gen.review()
        key = " ".join(row.tokens).lower()
        if key in seen:
            continue
        seen.add(key)
        base.append(row)

    # Rows reserved for structural problems (kept out of the other mess).
    order = list(range(N_BASE))
    rng.shuffle(order)
    take = lambda k: [order.pop() for _ in range(k)]  # noqa: E731
    unlabelled = take(N_UNLABELLED)
    partial = take(N_PARTIAL)
    bad_len = take(N_BAD_NER_LEN)
    # standalone markup goes between two sentences, so pick rows that have two
    multi = [i for i in order if any(t.endswith((".", "!")) for t in base[i].tokens[:-1])]
    standalone = multi[-N_STANDALONE_MARKUP:]
    order = [i for i in order if i not in standalone]
    clean_pool = sorted(order)

    # In-row mess; a row can get more than one kind.
    ent_pool = [i for i in clean_pool if has_entity_char(base[i])]
    # make sure &amp; and &quot; show up, not only &#39;
    rare = [i for i in ent_pool if any(c in t for t in base[i].tokens for c in '&"<')]
    rare = rng.sample(rare, min(len(rare), 14))
    rest = [i for i in ent_pool if i not in rare]
    for i in sorted(rare + rng.sample(rest, N_HTML_ENTITY - len(rare))):
        apply_html_entities(rng, base[i])
    for k, i in enumerate(sorted(rng.sample(clean_pool, N_HTML_TAG))):
        apply_html_tags(rng, base[i], form=k % 8)
    for i in sorted(rng.sample(clean_pool, N_URL)):
        apply_url(rng, base[i], rng.randint(100, 99999))
    for i in sorted(rng.sample(clean_pool, N_WHITESPACE)):
        apply_whitespace(rng, base[i])
    for i in sorted(rng.sample(clean_pool, N_NEWLINE)):
        apply_whitespace(rng, base[i], newline=True)
    zw_pool = [i for i in clean_pool if any(len(t) >= 4 and t.isalpha() for t in base[i].tokens)]
    for i in sorted(rng.sample(zw_pool, N_ZWSP)):
        apply_zwsp(rng, base[i])
    nfc_pool = [i for i in clean_pool
                if any(unicodedata.normalize("NFD", t) != t for t in base[i].tokens)]
    for i in sorted(rng.sample(nfc_pool, N_NON_NFC)):
        apply_non_nfc(rng, base[i])

    # Structural problems on the reserved rows.
    for i in unlabelled:
        base[i].drop = ["sentiment", "topic", "ner"]
        base[i].mess.append("unlabelled")
    partial_kinds = (
        [(["topic"], [])] * 5                       # text + ner + sentiment
        + [(["sentiment", "ner"], [])] * 3          # text + topic
        + [(["topic", "ner"], [])] * 3              # text + sentiment
        + [(["sentiment", "topic"], [])] * 2        # text + ner
        + [([], ["topic"]), ([], ["sentiment"])]    # a label given as JSON null
    )
    assert len(partial_kinds) == N_PARTIAL
    for i, (drop, null) in zip(partial, partial_kinds):
        base[i].drop, base[i].null = list(drop), list(null)
        base[i].mess.append("partial_labels")
    for k, i in enumerate(bad_len):
        row = base[i]
        row.tags = row.tags[:-1] if k < 2 else row.tags + ["O"]
        row.mess.append("ner_length_mismatch")
    for k, i in enumerate(standalone):
        row = base[i]
        pos = next(j + 1 for j, t in enumerate(row.tokens[:-1]) if t.endswith((".", "!")))
        row.tokens.insert(pos, ["<br/>", "<br>"][k % 2])
        row.tags.insert(pos, "O")
        row.seps = [" "] * (len(row.tokens) - 1)
        row.mess.append("standalone_markup")

    # Extra rows placed after their source: attach[t] = rows emitted after base[t].
    attach = {}
    src_pool = [i for i in clean_pool]
    sources = rng.sample(src_pool, N_EXACT_DUP + N_NEAR_DUP + N_CONFLICT)
    # every third near duplicate swaps an HTML entity <-> plain character, so
    # its source must contain one (' & " or an entity)
    swappable = [i for i in src_pool if i not in sources
                 and any(c in t for t in base[i].tokens for c in "'&\"")]
    swap_src = rng.sample(swappable, N_NEAR_DUP // 3)
    for k in range(N_NEAR_DUP // 3):
        sources[N_EXACT_DUP + 3 * k + 2] = swap_src[k]

    def place(extra, after_min, window=N_BASE):
        t = rng.randint(after_min, min(N_BASE - 1, after_min + window))
        attach.setdefault(t, []).append(extra)

    for s in sources[:N_EXACT_DUP]:
        d = copy.deepcopy(base[s])
        d.mess = ["exact_duplicate"]
        place(d, s, window=300)
    near_src = sources[N_EXACT_DUP:N_EXACT_DUP + N_NEAR_DUP]
    for k, s in enumerate(near_src):
        d = copy.deepcopy(base[s])
        d.mess = ["near_duplicate"]
        kind = k % 3
        if kind == 2:
            assert entity_swap(d)
        if kind == 0:
            if d.seps:
                j = rng.randrange(len(d.seps))
                d.seps[j] = "  " if d.seps[j] == " " else " "
            else:
                d.trail += " "
        elif kind == 1:
            flip_first_case(d)
        assert d.text() != base[s].text()
        place(d, s, window=300)
    for s in sources[N_EXACT_DUP + N_NEAR_DUP:]:
        d = copy.deepcopy(base[s])
        others = [x for x in SENTIMENTS if x != d.sentiment]
        d.sentiment = rng.choice(others)
        d.mess = ["conflicting_duplicate"]
        place(d, s, window=300)
    empty_texts = ["", "   ", "\t", " \n ", "  \t  "]
    for k, txt in enumerate(empty_texts):
        e = Row([], [], rng.choice(SENTIMENTS), rng.choice(TOPICS))
        e.text_override = txt
        if k in (2, 3):
            e.drop = ["ner"]
        if k == 4:
            e.drop = ["sentiment", "topic", "ner"]
        e.mess = ["empty_text"]
        place(e, 0)
    bad = copy.deepcopy(base[rng.choice(clean_pool)])
    bad.mess = ["malformed_json"]
    place(bad, 50)
    # one regression label that is not a number (after the RNG draws above,
    # so every other row stays as it was)
    bad_stars = next(base[i] for i in clean_pool[::-1]
                     if not base[i].mess and base[i].sentiment)
    bad_stars.mess = ["bad_stars"]

    seq = []
    for t in range(N_BASE):
        seq.append(base[t])
        extras = attach.get(t, [])
        rng.shuffle(extras)
        seq.extend(extras)

    lines = []
    for n, row in enumerate(seq, start=1):
        rid = f"rev-{n:05d}"
        if "malformed_json" in row.mess:
            full = json.dumps({"id": rid, "text": row.text()}, ensure_ascii=False)
            cut = full.index('"text": "') + len('"text": "')
            words = row.text().split()
            lines.append(full[:cut] + json.dumps(" ".join(words[: max(3, len(words) // 2)]), ensure_ascii=False)[1:-1])
            continue
        lines.append(json.dumps(row.to_obj(rid), ensure_ascii=False))
    return seq, lines


def summarize(seq, lines):
    total = len(lines)
    mess = Counter(m for row in seq for m in row.mess)
    sent = Counter(r.sentiment for r in seq if "sentiment" not in r.drop + r.null and "malformed_json" not in r.mess and r.sentiment)
    topic = Counter(r.topic for r in seq if "topic" not in r.drop + r.null and "malformed_json" not in r.mess and r.topic)
    ents = Counter(t[2:] for r in seq if "ner" not in r.drop and "malformed_json" not in r.mess
                   for t in r.tags if t.startswith("B-"))
    with_ent = sum(1 for r in seq if any(t.startswith("B-") for t in r.tags))
    print(f"lines: {total}")
    print("sentiment:", dict(sorted(sent.items())))
    print("topic:    ", dict(sorted(topic.items())))
    print("entities: ", dict(sorted(ents.items())), f"(rows with >=1 entity: {with_ent})")
    stars = Counter(r.stars() for r in seq if "sentiment" not in r.drop + r.null and "malformed_json" not in r.mess and r.sentiment)
    aspects = Counter(a for r in seq if "topic" not in r.drop + r.null and "malformed_json" not in r.mess and r.topic
                      for a in r.aspects())
    print("stars:    ", dict(sorted(stars.items())))
    print("aspects:  ", dict(sorted(aspects.items())))
    print("mess:     ", dict(sorted(mess.items())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "reviews.jsonl")
    args = ap.parse_args()
    seq, lines = build()
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    print(f"wrote {args.out}")
    summarize(seq, lines)


if __name__ == "__main__":
    main()
