"""Caption recipes: which alt-texts an image is paired with at each training step.

v2:   one of the corpus's composed alt-texts (label, "label emoji", tags joined, "group: label"…), uniformly.
rich: the label, or one single alt (a CLDR keyword, a shortcode, an icon alias: the words people type), or one
      of the v2 texts; then, 30% of the time, wrapped in a varied prompt ("a drawing of {}", "{} icon"…), so
      that prompt words stop carrying meaning and a lone everyday word ("dog", "coffee") meets its picture.
"""
PROMPTS = ["a picture of {}", "a drawing of {}", "{} icon", "{} emoji", "an icon of {}", "a photo of {}", "{} symbol",
           "a cartoon {}", "{} clipart", "the {}", "a {}", "{} illustration", "an image of {}", "{} sticker"]
# share of draws: the label, a single alt, a composed v2 text
RICH_MIX = (0.35, 0.35, 0.30)
PROMPT_P = 0.3


class Captions:
    def __init__(self, meta, recipe):
        self.recipe = recipe
        self.meta = meta

    def all_texts(self, m):
        """Every text the recipe can draw for one item (vocabulary building)."""
        if self.recipe == "v2":
            return list(m["texts"])
        return list(m["texts"]) + list(m.get("alts", [])) + PROMPTS

    def draw(self, i, rng):
        m = self.meta[i]
        if self.recipe == "v2":
            return m["texts"][int(rng.integers(len(m["texts"])))]
        alts = m.get("alts") or []
        r = rng.random()
        if r < RICH_MIX[0] or (not alts and r < RICH_MIX[0] + RICH_MIX[1]):
            text = m["label"] or m["texts"][0]
        elif r < RICH_MIX[0] + RICH_MIX[1]:
            text = alts[int(rng.integers(len(alts)))]
        else:
            text = m["texts"][int(rng.integers(len(m["texts"])))]
        if rng.random() < PROMPT_P:
            text = PROMPTS[int(rng.integers(len(PROMPTS)))].format(text)
        return text
