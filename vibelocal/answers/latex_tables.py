"""Lookup tables for latex.py: LaTeX command names to Unicode, super/subscripts, blackboard letters."""

from __future__ import annotations

GREEK: dict[str, str] = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε", "zeta": "ζ",
    "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν",
    "xi": "ξ", "pi": "π", "varpi": "ϖ", "rho": "ρ", "varrho": "ϱ", "sigma": "σ", "varsigma": "ς", "tau": "τ",
    "upsilon": "υ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ",
    "Upsilon": "Υ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}  # fmt: skip

OPERATORS: dict[str, str] = {
    "cdot": "·", "times": "×", "div": "÷", "pm": "±", "mp": "∓", "ast": "∗", "star": "⋆", "circ": "∘",
    "bullet": "•", "oplus": "⊕", "otimes": "⊗", "le": "≤", "leq": "≤", "leqslant": "≤", "ge": "≥", "geq": "≥",
    "geqslant": "≥", "ne": "≠", "neq": "≠", "approx": "≈", "equiv": "≡", "cong": "≅", "sim": "∼",
    "simeq": "≃", "propto": "∝", "ll": "≪", "gg": "≫", "lt": "<", "gt": ">", "infty": "∞", "to": "→",
    "rightarrow": "→", "leftarrow": "←", "gets": "←", "Rightarrow": "⇒", "Leftarrow": "⇐", "implies": "⟹",
    "impliedby": "⟸", "iff": "⟺", "Leftrightarrow": "⇔", "leftrightarrow": "↔", "mapsto": "↦",
    "longrightarrow": "⟶", "uparrow": "↑", "downarrow": "↓", "in": "∈", "notin": "∉", "ni": "∋",
    "subset": "⊂", "subseteq": "⊆", "supset": "⊃", "supseteq": "⊇", "subsetneq": "⊊", "cup": "∪",
    "cap": "∩", "setminus": "∖", "emptyset": "∅", "varnothing": "∅", "forall": "∀", "exists": "∃",
    "nexists": "∄", "neg": "¬", "lnot": "¬", "land": "∧", "wedge": "∧", "lor": "∨", "vee": "∨",
    "sum": "∑", "prod": "∏", "coprod": "∐", "int": "∫", "iint": "∬", "iiint": "∭", "oint": "∮",
    "bigcup": "⋃", "bigcap": "⋂", "partial": "∂", "nabla": "∇", "ldots": "…", "dots": "…", "dotsc": "…",
    "dotsb": "⋯", "cdots": "⋯", "vdots": "⋮", "ddots": "⋱", "degree": "°", "angle": "∠", "measuredangle": "∡",
    "triangle": "△", "square": "□", "perp": "⊥", "parallel": "∥", "mid": "∣", "nmid": "∤", "divides": "∣",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉", "langle": "⟨", "rangle": "⟩", "vert": "|",
    "Vert": "‖", "lvert": "|", "rvert": "|", "lVert": "‖", "rVert": "‖", "prime": "′", "therefore": "∴",
    "because": "∵", "hbar": "ℏ", "ell": "ℓ", "Re": "ℜ", "Im": "ℑ", "aleph": "ℵ", "checkmark": "✓",
    "quad": "  ", "qquad": "    ", "bmod": " mod ", "mod": " mod ", "colon": ":", "cdotp": "·",
    "lbrace": "{", "rbrace": "}", "dagger": "†", "top": "⊤", "bot": "⊥", "models": "⊨", "vdash": "⊢",
    "textbackslash": "\\", "backslash": "\\", "%": "%", "$": "$", "&": "&", "#": "#", "_": "_", "{": "{", "}": "}",
    "|": "‖",
}  # fmt: skip

SYMBOLS: dict[str, str] = {**GREEK, **OPERATORS}

FUNCTIONS: frozenset[str] = frozenset({
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "coth",
    "log", "ln", "lg", "exp", "max", "min", "sup", "inf", "lim", "limsup", "liminf", "det", "gcd", "lcm",
    "deg", "dim", "ker", "arg", "Pr", "hom",
})  # fmt: skip

IGNORED: frozenset[str] = frozenset({
    "displaystyle", "textstyle", "scriptstyle", "scriptscriptstyle", "limits", "nolimits", "nonumber",
    "notag", "label", "centering", "hfill", "noindent", "allowbreak",
})  # fmt: skip

FONT_COMMANDS: dict[str, bool] = {
    "mathrm": True, "mathbf": True, "mathit": True, "mathsf": True, "mathtt": True, "mathcal": True,
    "mathscr": True, "mathfrak": True, "boldsymbol": True, "bm": True, "textbf": False, "textit": False,
    "emph": False, "textsf": False, "texttt": False, "underline": True, "small": False,
}  # fmt: skip
"""Font commands print their argument; the value says whether it is read as math."""

ACCENTS: dict[str, str] = {
    "hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0305", "vec": "\u20d7",
    "overrightarrow": "\u20d7", "tilde": "\u0303", "widetilde": "\u0303", "dot": "\u0307", "ddot": "\u0308",
}  # fmt: skip
"""Combining marks put after the argument."""

BLACKBOARD: dict[str, str] = {
    "N": "ℕ", "Z": "ℤ", "Q": "ℚ", "R": "ℝ", "C": "ℂ", "P": "ℙ", "H": "ℍ", "E": "𝔼", "F": "𝔽", "1": "𝟙",
}  # fmt: skip

SUPERSCRIPTS: dict[str, str] = {
    **dict(zip("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹", strict=True)),
    "+": "⁺", "-": "⁻", "−": "⁻", "=": "⁼", "(": "⁽", ")": "⁾", "∘": "°", "°": "°", "′": "′", "″": "″",
    "*": "*", "∗": "*",
    **dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True)),
    **dict(zip("ABDEGHIJKLMNOPRTUVW", "ᴬᴮᴰᴱᴳᴴᴵᴶᴷᴸᴹᴺᴼᴾᴿᵀᵁⱽᵂ", strict=True)),
    "α": "ᵅ", "β": "ᵝ", "γ": "ᵞ", "δ": "ᵟ", "θ": "ᶿ", "ι": "ᶥ", "ϕ": "ᵠ", "φ": "ᵠ", "χ": "ᵡ",
}  # fmt: skip

SUBSCRIPTS: dict[str, str] = {
    **dict(zip("0123456789", "₀₁₂₃₄₅₆₇₈₉", strict=True)),
    "+": "₊", "-": "₋", "−": "₋", "=": "₌", "(": "₍", ")": "₎",
    **dict(zip("aehijklmnoprstuvx", "ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True)),
    "β": "ᵦ", "γ": "ᵧ", "ρ": "ᵨ", "φ": "ᵩ", "ϕ": "ᵩ", "χ": "ᵪ",
}  # fmt: skip

VULGAR_FRACTIONS: dict[tuple[str, str], str] = {
    ("1", "2"): "½", ("1", "3"): "⅓", ("2", "3"): "⅔", ("1", "4"): "¼", ("3", "4"): "¾", ("1", "5"): "⅕",
    ("2", "5"): "⅖", ("3", "5"): "⅗", ("4", "5"): "⅘", ("1", "6"): "⅙", ("5", "6"): "⅚", ("1", "7"): "⅐",
    ("1", "8"): "⅛", ("3", "8"): "⅜", ("5", "8"): "⅝", ("7", "8"): "⅞", ("1", "9"): "⅑", ("1", "10"): "⅒",
}  # fmt: skip
