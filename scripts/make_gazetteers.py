#!/usr/bin/env python3
"""Writes assets/gazetteers/<domain>.json: the invented name lists the sample-data
generator (src/sample) draws entities from, and that entity abstraction uses as
its gazetteers. Run once by hand; the JSON files are the committed source of truth.

Names are invented combinatorially (fictional drugs, diseases, statutes, companies,
people, places) so that generated facts never contradict real-world knowledge;
symptoms, procedures, anatomy, jurisdictions and some market indices are real.
Every surface is unique across all files (case-insensitive), and no surface
contains another surface as a whole-word part, so gold spans never nest.
"""
import json
import random
import re
from pathlib import Path

rng = random.Random(20240607)
used_stems = set()


def combos(parts_a, parts_b, join=""):
    return [a + join + b for a in parts_a for b in parts_b]


def pick(pool, n):
    pool = sorted(set(pool))
    rng.shuffle(pool)
    return pool[:n]


def unique_stems(pool, n):
    out = []
    for s in pick(pool, len(pool)):
        if s.lower() not in used_stems:
            used_stems.add(s.lower())
            out.append(s)
        if len(out) == n:
            break
    return out


# ---------- shared invented word stock ----------
STEM_A = ["Vel", "Nor", "Quil", "Ar", "Brack", "Cas", "Dun", "Ev", "Fal", "Gal", "Hal", "Is", "Jor", "Kel",
          "Lum", "Mar", "Nex", "Or", "Pel", "Ros", "Sol", "Tal", "Ul", "Ven", "Wex", "Xan", "Yor", "Zen",
          "Aster", "Bel", "Cor", "Dal", "Esk", "Fen", "Grey", "Hol", "Ind", "Kess", "Lor", "Mont", "Ost", "Pax",
          "Rav", "Sten", "Tor", "Vas", "Wyn", "Cal"]
STEM_B = ["trix", "vane", "lon", "turo", "well", "tellan", "more", "line", "haven", "dria", "cyon", "ara",
          "dane", "vin", "ora", "ton", "ix", "ica", "ent", "eon", "ova", "ward", "ley", "mark", "gate", "rin",
          "sa", "tor", "vell", "cott"]
STEMS = combos(STEM_A, STEM_B)

# ---------- medical ----------
DRUG_PRE = ["ab", "bel", "cor", "dal", "efa", "fen", "gal", "hal", "ido", "lev", "mir", "nor", "oxa", "pra",
            "quin", "ral", "sel", "tar", "ulo", "val", "xan", "zol", "bri", "cla", "dro", "flu", "gli", "ker",
            "lum", "pex", "ros", "tib", "ven", "zep", "amo", "bex", "civ", "dex", "eno", "fos"]
DRUG_MID = ["a", "i", "o", "u", "e", "ri", "ta", "lo", "ve", "xi"]
DRUG_STEM = ["pril", "lol", "sartan", "statin", "mab", "tinib", "zole", "xacin", "prazole", "dronate",
             "gliptin", "vir", "setron", "parin", "cycline", "profen", "dipine", "lukast", "triptan", "fil",
             "zepam", "tidine", "floxin", "navir"]
drugs = pick([p + m + s for p in DRUG_PRE for m in DRUG_MID for s in DRUG_STEM], 160)

SURNAMES_MED = ["Marrowfield", "Osterby", "Kessler", "Tavener", "Halloran", "Brandt", "Lindqvist", "Ferrante",
                "Okonkwo", "Vasquez", "Pemberton", "Achterberg", "Nakamura", "Dubois", "Whitlock", "Rasmussen",
                "Castellano", "Ibsen", "Moreau", "Sato", "Quennell", "Abernathy", "Goldfarb", "Petrov", "Haldane",
                "Lindgren", "Marchetti", "Oyelaran", "Strand", "Voss", "Eriksen", "Fairclough", "Gunderson",
                "Horvath", "Ivanova", "Jessup", "Kovac", "Larkspur", "Mbeki", "Novak", "Orlov", "Prentice",
                "Renwick", "Sorensen", "Thorne", "Underhill", "Valdez", "Winslow", "Yardley", "Zellweger"]
DISEASE_ADJ = ["hereditary", "acquired", "juvenile", "chronic", "familial", "progressive", "idiopathic", "atypical"]
DISEASE_CORE = ["renal sclerosis", "hepatic fibrosis", "myocardial dystrophy", "pulmonary granulomatosis",
                "neural atrophy", "vascular dysplasia", "thyroid insufficiency", "pancreatic calcinosis",
                "retinal degeneration", "cortical myopathy", "splenic hyperplasia", "dermal keratosis",
                "bronchial stenosis", "marrow aplasia", "biliary dyskinesia", "enteric dysmotility"]
disease_pool = ([f"{s} syndrome" for s in SURNAMES_MED] + [f"{s}'s disease" for s in SURNAMES_MED]
                + [f"{a}\u2013{b} syndrome" for a in SURNAMES_MED[:25] for b in SURNAMES_MED[25:]]
                + [f"{s} {c}" for s in SURNAMES_MED for c in ["fever", "palsy", "anaemia"]]
                + [f"{a} {c}" for a in DISEASE_ADJ for c in DISEASE_CORE])
diseases = pick(disease_pool, 170)

symptoms = ["fever", "fatigue", "headache", "nausea", "vomiting", "dizziness", "shortness of breath",
            "chest pain", "joint pain", "muscle cramps", "dry cough", "skin rash", "blurred vision",
            "night sweats", "weight loss", "hair loss", "insomnia", "palpitations", "abdominal pain", "diarrhoea",
            "constipation", "tremor", "numbness", "tingling in the hands", "swollen ankles", "sore throat",
            "chills", "loss of appetite", "jaundice", "itching", "wheezing", "hoarseness", "confusion",
            "memory loss", "muscle weakness", "back pain", "neck stiffness", "excessive thirst",
            "frequent urination", "easy bruising", "nosebleeds", "ringing in the ears", "hearing loss",
            "dry mouth", "drowsiness", "anxiety", "low mood", "facial flushing", "hiccups", "heartburn",
            "bloating", "fainting", "double vision", "eye pain", "light sensitivity", "slurred speech",
            "difficulty swallowing", "leg cramps", "cold hands", "hot flushes", "excessive sweating",
            "irritability", "restlessness", "hives", "peeling skin", "mouth ulcers", "bleeding gums",
            "blood in the urine", "pale skin", "rapid breathing", "slow heart rate", "racing heartbeat",
            "high fever", "low-grade fever", "joint swelling", "morning stiffness", "calf pain", "foot ulcers",
            "dark urine", "pale stools", "sneezing", "runny nose", "watery eyes", "earache", "toothache",
            "jaw pain", "shoulder pain", "hip pain", "knee pain", "muscle twitching", "vertigo",
            "loss of smell", "loss of taste"]
procedures = ["colonoscopy", "upper endoscopy", "bronchoscopy", "cystoscopy", "lumbar puncture",
              "bone marrow biopsy", "liver biopsy", "skin biopsy", "renal biopsy", "chest X-ray", "CT scan",
              "MRI scan", "PET scan", "echocardiogram", "electrocardiogram", "stress test", "spirometry",
              "sleep study", "nerve conduction study", "electroencephalogram", "mammogram",
              "abdominal ultrasound", "Doppler ultrasound", "thyroid scan", "bone density scan",
              "cardiac catheterisation", "coronary angiography", "capsule endoscopy", "arthroscopy",
              "laparoscopy", "sigmoidoscopy", "genetic panel", "complete blood count", "urinalysis",
              "glucose tolerance test", "sweat chloride test", "tilt table test", "allergy patch test",
              "audiometry", "retinal photography", "slit-lamp examination", "tonometry", "fine-needle aspiration",
              "thoracentesis", "paracentesis", "hip replacement", "knee replacement", "cataract surgery",
              "appendectomy", "cholecystectomy", "tonsillectomy", "hernia repair", "spinal fusion",
              "coronary bypass surgery", "angioplasty", "pacemaker implantation", "carpal tunnel release",
              "dialysis", "radiotherapy", "physiotherapy programme", "skin graft", "kidney transplant",
              "liver transplant", "LASIK surgery", "dental implant surgery", "tendon repair"]
anatomy = ["liver", "pancreas", "spleen", "gallbladder", "left ventricle", "right atrium", "mitral valve",
           "aorta", "thyroid gland", "adrenal glands", "pituitary gland", "spinal cord", "cerebellum",
           "frontal lobe", "hippocampus", "optic nerve", "retina", "cornea", "inner ear", "cochlea",
           "oesophagus", "stomach lining", "small intestine", "colon", "rectum", "bladder", "prostate",
           "ovaries", "uterus", "kidneys", "ureters", "lungs", "bronchi", "alveoli", "trachea", "larynx",
           "vocal cords", "lymph nodes", "bone marrow", "femur", "pelvis", "lumbar spine", "cervical spine",
           "rotator cuff", "achilles tendon", "peripheral nerves", "coronary arteries", "carotid arteries",
           "pulmonary arteries", "portal vein", "myelin sheath", "sinuses", "salivary glands", "thymus",
           "appendix", "duodenum", "bile ducts", "synovial joints", "tear ducts", "sweat glands"]

# ---------- legal ----------
STAT_ADJ = ["Fair", "Uniform", "Consumer", "Residential", "Digital", "Clean", "Safe", "Small Business", "Public",
            "Financial", "Workplace", "Rural", "Open", "Patient", "Family", "Responsible", "Transparent",
            "Modern", "Fair Access", "Honest"]
STAT_TOPIC = ["Tenancy", "Lending", "Data Privacy", "Wage Payment", "Records", "Water Quality",
              "Product Safety", "Debt Collection", "Franchise", "Whistleblower", "Building Standards",
              "Trade Practices", "Credit Reporting", "Parental Leave", "Warranty", "Pension", "Lobbying",
              "Drug Control", "Medical Records", "Securities Disclosure", "Investor Protection", "Contract"]
STAT_KIND = ["Act", "Reform Act", "Protection Act", "Enforcement Act", "Standards Act"]
stat_pool = [f"the {a} {t} {k}" for a in STAT_ADJ for t in STAT_TOPIC for k in STAT_KIND
             if not (a.endswith("Fair") and k == "Standards Act")]
statutes = pick(stat_pool, 170)

COUNTY = unique_stems(STEMS, 45)
COURT_KIND = ["County Circuit Court", "County Superior Court", "District Court", "County Court of Common Pleas",
              "Land Court", "Family Court", "County Chancery Court"]
courts = pick([f"the {c} {k}" for c in COUNTY for k in COURT_KIND], 60)
ORDINALS = ["First", "Second", "Third", "Fourth", "Fifth", "Sixth", "Seventh", "Eighth", "Ninth", "Tenth",
            "Eleventh", "Twelfth"]
courts += [f"the Court of Appeals for the {o} District" for o in ORDINALS]

FIRST_LEGAL = ["Maria", "Daniel", "Priya", "Thomas", "Aisha", "Robert", "Elena", "Marcus", "Hannah", "Kwame",
               "Sofia", "Gregory", "Mei", "Patrick", "Nadia", "Samuel", "Ingrid", "Victor", "Leila", "Oscar",
               "Fiona", "Rafael", "Yusuf", "Clara", "Dmitri", "Beatrice", "Hugo", "Amara", "Felix", "Rosa"]
LAST_LEGAL = ["Okafor", "Brennan", "Lindholm", "Castillo", "Whitaker", "Ahmadi", "Kowalski", "Delacroix",
              "Fitzgerald", "Hargrove", "Iwasaki", "Jablonski", "Kendrick", "Lombardi", "Mwangi", "Nilsson",
              "Oduya", "Pacheco", "Quintero", "Rourke", "Salazar", "Tremblay", "Umarov", "Vance", "Wexford",
              "Yilmaz", "Zamora", "Ashby", "Beaumont", "Carrington"]
party_people = pick(combos(FIRST_LEGAL, LAST_LEGAL, " "), 230)
PARTY_KIND = ["Logistics LLC", "Construction LLC", "Properties LLC", "Freight LLC", "Farms LLC",
              "Hospitality LLC", "Staffing LLC", "Builders LLC", "Marine LLC", "Realty LLC"]
party_orgs = [f"{s} {rng.choice(PARTY_KIND)}" for s in unique_stems(STEMS, 120)]
parties = party_people + party_orgs

jurisdictions = ["Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware",
                 "Florida", "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky",
                 "Louisiana", "Maine", "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi",
                 "Missouri", "Montana", "Nebraska", "Nevada", "New Hampshire", "New Jersey", "New Mexico",
                 "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma", "Oregon", "Pennsylvania",
                 "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah", "Vermont",
                 "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming", "Ontario", "Quebec",
                 "British Columbia", "Alberta", "Manitoba", "Nova Scotia", "England and Wales", "Scotland",
                 "Northern Ireland", "New South Wales", "Queensland", "Western Australia", "New Zealand"]

# ---------- financial ----------
COMPANY_PHARMA = ["Pharmaceuticals", "Therapeutics", "Biosciences", "Pharma"]
COMPANY_ASSET = ["Asset Management", "Investments", "Capital Partners", "Wealth Management"]
COMPANY_OTHER = ["Technologies", "Systems", "Holdings", "Corp", "Group", "Industries", "Motors", "Foods",
                 "Energy", "Semiconductor", "Networks", "Robotics", "Airlines", "Materials", "Retail"]
companies = ([f"{s} {rng.choice(COMPANY_PHARMA)}" for s in unique_stems(STEMS, 38)]
             + [f"{s} {rng.choice(COMPANY_ASSET)}" for s in unique_stems(STEMS, 30)]
             + [f"{s} {rng.choice(COMPANY_OTHER)}" for s in unique_stems(STEMS, 90)])

BRAND = ["Aerion", "Solace", "Kestrel", "Nimbus", "Orbit", "Pulse", "Vertex", "Halo", "Lumen", "Strata",
         "Quanta", "Zephyr", "Atlas", "Echo", "Nova", "Tessera", "Cobalt", "Onyx", "Summit", "Drift", "Ember",
         "Glint", "Marlin", "Prism"]
MODEL = ["One", "Pro", "Max", "X2", "X5", "Air", "Mini", "S3", "Ultra", "Go", "Lite", "Prime", "7", "9", "Model 001"]
products = pick([f"{b} {m}" for b in BRAND for m in MODEL], 80)
FUND_STEM = ["Harborview", "Pinecrest", "Bluewater", "Stonebridge", "Redwood", "Silverline", "Oakmont",
             "Clearwater", "Highgate", "Westbrook", "Northfield", "Eastgate", "Lakeshore", "Ironwood",
             "Maplewood", "Summerhill", "Brightwater", "Foxglove"]
FUND_TYPE = ["Global Equity Fund", "Emerging Markets Fund", "Short-Term Bond Fund", "Dividend Growth Fund",
             "Small-Cap Value Fund", "Total Market Index Fund", "Municipal Bond Fund", "Clean Energy ETF",
             "Technology ETF", "High Yield Bond ETF"]
funds = pick([f"the {s} {t}" for s in FUND_STEM for t in FUND_TYPE], 70)
PLAN_TIER = ["Gold Plan", "Silver Plan", "Bronze Plan", "Select Health Plan", "Premier Health Plan",
             "Essential Care Plan"]
plans = pick([f"{s} {t}" for s in FUND_STEM for t in PLAN_TIER], 36)
products_all = products + funds + plans

indices = ["the S&P 500", "the Dow Jones Industrial Average", "the Nasdaq-100", "the Nasdaq Composite",
           "the Russell 2000", "the FTSE 100", "the FTSE 250", "the DAX", "the CAC 40", "the Nikkei 225",
           "the Hang Seng Index", "the Euro Stoxx 50", "the S&P/TSX Composite", "the ASX 200",
           "the MSCI World Index", "the MSCI Emerging Markets Index", "the Russell 1000", "the S&P MidCap 400",
           "the Wilshire 5000", "the KOSPI", "the Sensex", "the IBEX 35", "the AEX", "the SMI",
           "the OMX Stockholm 30", "the Bloomberg US Aggregate Bond Index"]
IDX_STEM = ["Meridian", "Halcyon", "Beacon", "Sterling", "Keystone", "Pinnacle", "Compass", "Horizon",
            "Evergreen", "Granite"]
IDX_KIND = ["Clean Energy Index", "Global Dividend Index", "Small-Cap Index", "Technology Leaders Index",
            "Infrastructure Index", "Consumer Brands Index"]
indices += pick([f"the {s} {k}" for s in IDX_STEM for k in IDX_KIND], 34)

# ---------- general ----------
FIRST_GEN = ["Alaric", "Benedikt", "Cordelia", "Desmond", "Elowen", "Florian", "Griselda", "Horatio", "Isolde",
             "Jasper", "Katarina", "Leopold", "Mirabel", "Nikolai", "Ottilie", "Percival", "Rosalind",
             "Sebastian", "Theodora", "Ulrich", "Valentina", "Wilhelmina", "Xavier", "Ysolde", "Zacharias",
             "Adelaide", "Bartholomew", "Constance", "Edmund", "Genevieve"]
LAST_GEN = ["Ashcroft", "Blackwood", "Crane", "Dunmore", "Everhart", "Fairweather", "Greenhalgh", "Holloway",
            "Inglewood", "Jardine", "Kingsley", "Lovell", "Merriweather", "Northcott", "Oakley", "Penrose",
            "Quayle", "Ravensworth", "Sterne", "Thackeray", "Underwood", "Vickery", "Wainwright", "Yeats-Morley",
            "Ziegler", "Abbott", "Birchall", "Coleridge-Hart", "Davenant", "Ellery"]
persons = pick(combos(FIRST_GEN, LAST_GEN, " "), 230)
CITY_A = ["Alder", "Bracken", "Carrow", "Dorn", "Elm", "Fern", "Glen", "Heath", "Ivy", "Kings", "Lark", "Mill",
          "Nether", "Oak", "Pens", "Quarry", "Rush", "Stour", "Thorn", "Umber", "Wick", "Yarrow", "Ash", "Birch"]
CITY_B = ["mere", "ford", "wick", "haven", "bury", "stead", "holm", "ton", "field", "gate", "port", "moor",
          "dale", "minster", "by", "cliff"]
cities = pick(combos(CITY_A, CITY_B), 120) + [f"Port {s}" for s in pick(["Ellery", "Anselm", "Morrow", "Calder", "Vesper", "Lowen", "Tamsin", "Rivard"], 8)]
RIVER = ["Vell", "Ostrel", "Tamber", "Caddow", "Lune", "Morva", "Skell", "Brannock", "Wenlow", "Ise", "Garrow",
         "Kennet-Ash", "Dauber", "Elsin", "Harrow", "Fennick", "Rilla", "Sorrow", "Tarne", "Ulva", "Whitten",
         "Yore", "Corrib-Vale", "Amble", "Bressa", "Dovey-Hale", "Esker", "Fallow", "Gilder", "Hollin", "Irth",
         "Jorvel", "Kestle", "Lorne", "Marrow", "Nidd-Ale", "Orwen", "Pelham", "Quell", "Rother-Vale"]
rivers = [f"the {r} River" for r in RIVER]
locations = cities + rivers
ORG_STEM = ["Aldous", "Brightmoor", "Castellane", "Dunholme", "Everleigh", "Fairbourne", "Greyfriars",
            "Hollingsworth", "Ivernia", "Jessamine", "Kilbride", "Langholm", "Merriton", "Norbury", "Ormond",
            "Pellingham", "Queensmere", "Rothwell", "Sandringham-Vale", "Trelawney"]
ORG_EDU = ["University", "College", "Conservatory", "Polytechnic Institute", "Academy of Fine Arts"]
ORG_OTHER = ["Society", "Philosophical Society", "Museum", "Foundation", "Observatory", "Botanical Garden",
             "Historical Society", "Library", "Orchestra", "Geographical Society"]
orgs = (pick([f"the {s} {k}" for s in ORG_STEM for k in ORG_EDU], 50)
        + pick([f"the {s} {k}" for s in ORG_STEM for k in ORG_OTHER], 90))
EV_ADJ = ["Great", "Grand", "Northern", "Winter", "Summer", "Autumn", "Copper", "Silver", "Iron", "Lantern",
          "Salt", "Harvest", "Long", "Red", "Quiet", "Bitter", "Golden", "River"]
EV_NOUN = ["Exposition", "Accord", "Congress", "Uprising", "Fair", "Expedition", "Treaty", "Flood", "Famine",
           "Strike", "Festival", "Crossing", "Games", "Rebellion", "Council", "Exhibition", "Regatta", "Blackout"]
events = pick([f"the {a} {n}" for a in EV_ADJ for n in EV_NOUN], 130)

files = {
    "legal": {"STATUTE": statutes, "COURT": courts, "PARTY": parties, "JURISDICTION": jurisdictions},
    "medical": {"DRUG": drugs, "DISEASE": diseases, "SYMPTOM": symptoms, "PROCEDURE": procedures,
                "ANATOMY": anatomy},
    "financial": {"COMPANY": companies, "PRODUCT": products_all, "INDEX": indices},
    "general": {"PERSON": persons, "LOCATION": locations, "ORGANIZATION": orgs, "EVENT": events},
}

# Uniqueness across files, and no surface that contains another one as whole words.
owner = {}
for domain, types in files.items():
    for label, names in types.items():
        for name in names:
            key = name.lower()
            assert key not in owner, f"{name!r} is both {owner[key]} and {domain}/{label}"
            owner[key] = f"{domain}/{label}"


def strip_the(s):
    return s[4:] if s.lower().startswith("the ") else s


all_keys = sorted(owner)
word_sets = {}
dropped = set()
for key in all_keys:
    core = strip_the(key)
    pattern = re.compile(r"(?<![\w-])" + re.escape(core) + r"(?![\w-])")
    for other in all_keys:
        if other != key and pattern.search(other):
            dropped.add(other)
for domain, types in files.items():
    for label in types:
        kept = [n for n in types[label] if n.lower() not in dropped]
        gone = [n for n in types[label] if n.lower() in dropped]
        if gone:
            print(f"{domain}/{label}: dropped {len(gone)} containing another surface, e.g. {gone[:4]}")
        types[label] = sorted(kept, key=str.lower)

out_dir = Path(__file__).resolve().parent.parent / "assets" / "gazetteers"
out_dir.mkdir(parents=True, exist_ok=True)
for domain, types in files.items():
    doc = {label: names for label, names in types.items()}
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    (out_dir / f"{domain}.json").write_text(text, encoding="utf-8")
    print(domain, {k: len(v) for k, v in types.items()})
