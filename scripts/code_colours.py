"""Print the stylesheet's code colours: pygments' `default` style for the light theme and
`monokai` for the dark one, as `light-dark()` pairs, for the server's pygments classes and the
matching highlight.js classes (the browser's rendering while an answer streams), so that code
looks the same before and after the server's HTML replaces the streamed one.

    .venv/bin/python scripts/code_colours.py   # paste between the markers in iridium.css
"""

from pygments.styles import get_style_by_name
from pygments.token import STANDARD_TYPES

LIGHT, DARK = get_style_by_name("default"), get_style_by_name("monokai")

# highlight.js classes drawn like a pygments token class.
HLJS = {
    "k": ["hljs-keyword", "hljs-meta .hljs-keyword"],
    "kc": ["hljs-literal"],
    "kt": ["hljs-type"],
    "nb": ["hljs-built_in"],
    "bp": ["hljs-variable.language_"],
    "no": ["hljs-variable.constant_"],
    "nf": ["hljs-title.function_", "hljs-title"],
    "nc": ["hljs-title.class_", "hljs-selector-class"],
    "nd": ["hljs-selector-pseudo"],
    "nv": ["hljs-variable", "hljs-template-variable"],
    "nt": ["hljs-name", "hljs-selector-tag"],
    "na": ["hljs-attr", "hljs-attribute", "hljs-selector-attr"],
    "nn": ["hljs-selector-id"],
    "m": ["hljs-number"],
    "o": ["hljs-operator"],
    "s": ["hljs-string"],
    "se": ["hljs-char.escape_"],
    "si": ["hljs-subst"],
    "ss": ["hljs-symbol"],
    "sr": ["hljs-regexp"],
    "sd": ["hljs-doctag"],
    "c": ["hljs-comment", "hljs-quote"],
    "cp": ["hljs-meta"],
    "cpf": ["hljs-meta .hljs-string"],
    "gh": ["hljs-section"],
    "gi": ["hljs-addition"],
    "gd": ["hljs-deletion"],
    "ge": ["hljs-emphasis"],
    "gs": ["hljs-strong"],
}


def colour(style, token) -> str:
    value = style.style_for_token(token)["color"]
    return f"#{value}" if value else "currentColor"


def main() -> None:
    print(f".markdown pre {{ background: light-dark(#{LIGHT.background_color.lstrip('#')}, "
          f"{DARK.background_color}); color: light-dark(#1b1f24, #f8f8f2); }}")  # fmt: skip
    for token, name in sorted(STANDARD_TYPES.items(), key=lambda item: item[1]):
        if not name:
            continue
        light, dark = LIGHT.style_for_token(token), DARK.style_for_token(token)
        if not (light["color"] or dark["color"] or light["bold"] or light["italic"]):
            continue
        selectors = [f".markdown pre .{name}"] + [f".markdown pre .{c}" for c in HLJS.get(name, [])]
        rules = []
        if light["color"] or dark["color"]:
            rules.append(f"color: light-dark({colour(LIGHT, token)}, {colour(DARK, token)})")
        if light["bold"]:
            rules.append("font-weight: bold")
        if light["italic"]:
            rules.append("font-style: italic")
        print(f"{', '.join(selectors)} {{ {'; '.join(rules)} }}")


if __name__ == "__main__":
    main()
