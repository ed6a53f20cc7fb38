"""Help that reads as words: ``--data DATA``, ``--set KEY=VALUE``, ``verify-data ROOT``.

Typer shows each option's Python type (``<str>``, ``<bool>``, ``<list[str]>``) and a required
argument as ``{root}``. ``use_words(command)`` walks the click command tree once, before it runs,
and shows instead the option's ``metavar`` when one is declared, else its long name in capitals;
flags show nothing (they take no value).
"""

from __future__ import annotations

from typing import Any

#: metavars for options whose name alone does not say what they take
WORDS = {"--set": "KEY=VALUE"}


def _word(param: Any) -> str:
    if param.metavar:
        return str(param.metavar)
    longs = [opt for opt in param.opts if opt.startswith("--")]
    if longs and longs[0] in WORDS:
        return WORDS[longs[0]]
    name = longs[0][2:] if longs else (param.name or "value")
    return name.replace("_", "-").upper()


def use_words(command: Any) -> Any:
    """Give every parameter of ``command`` and its subcommands a word for its value; return it."""
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") == "argument":
            word = _word(param)
            param.metavar = word
            param._usage_display_name = (lambda w=word, p=param: w if p.required else f"[{w}]")
            param.display_type_rich = lambda ctx: None
        elif getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.display_type_rich = lambda ctx: None
        else:
            word = _word(param)
            param.display_type_rich = lambda ctx, w=word: w
    original = command.get_help_option

    def help_option(ctx: Any, original=original) -> Any:  # made per context: a flag, no value
        option = original(ctx)
        if option is not None:
            option.display_type_rich = lambda ctx: None
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        use_words(sub)
    return command
