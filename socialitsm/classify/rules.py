"""Regex cues for IT-service complaints, praise, sarcasm and urgency."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str
    cue: str


WEIGHTS: dict[str, float] = {
    "outage": 2.5,
    "sarcasm": 2.0,
    "frustration": 1.8,
    "trouble": 1.2,
    "repeat": 0.8,
    "positive": -1.6,
    "elsewhere": -1.5,
}
LABELS: dict[str, str] = {
    "outage": "outage word",
    "sarcasm": "sarcasm",
    "frustration": "frustration",
    "trouble": "trouble word",
    "repeat": "repeat",
    "positive": "positive cue",
    "elsewhere": "another company's service",
    "urgency": "urgency",
}
SARCASM_TAGS = frozenset({"not", "sarcasm", "sarcastic", "irony", "thanksfornothing"})


def _lines(block: str) -> tuple[str, ...]:
    """One regex fragment per non-blank line; matched against lowercased text."""
    return tuple(line.strip() for line in block.splitlines() if line.strip())


# Word cues of every kind share one regex pass and at a given position the earlier
# kind wins, so sarcasm ("thanks for nothing") is listed before praise ("thanks").
_WORD_CUES: dict[str, tuple[str, ...]] = {
    "sarcasm": _lines(
        r"""
        thanks for nothing
        merci pour rien
        danke für nichts
        gracias por nada
        great,? (?:another|again)
        oh (?:great|joy|wonderful|perfect)
        yay,? (?:another|again)
        just what i needed
        surprise,? surprise
        what a surprise
        love (?:how|it when|that|when)(?=\b.{0,80}?\b(?:again|down|broken|crash\w*|fail\w*|error\w*|drop(?:s|ped|ping)|still|not working)\b)
        """
    ),
    "outage": _lines(
        r"""
        not working
        (?:isn'?t|aren'?t|stopped) working
        not loading
        (?:doesn'?t|does not|don'?t|do not|didn'?t|won'?t|will not) (?:work|load|start|open|boot|connect|sync|send|print|respond)
        (?:can'?t|cannot|can not|couldn'?t|unable to|(?:nobody|no one|noone) can) (?:even )?(?:log ?in|log on|login|sign ?in|connect|access|print|send|open|reach|get in|work)
        keeps? (?:dropping|crashing|freezing|failing|disconnecting|hanging|rebooting|restarting|logging (?:me )?out|timing out)
        (?:vpn|wi-?fi|wlan|connection|calls?|signal|network|line|teams|zoom) (?:keeps? )?drop(?:s|ped|ping)
        drop(?:s|ped|ping) (?:out|every|all the time|constantly|randomly)
        0x[0-9a-f]{8}
        (?:http|error|err|code|status) ?5\d\d
        50[234]
        not (?:yet )?(?:fixed|resolved|solved|sorted)
        never (?:got )?(?:fixed|resolved)
        (?:hasn'?t|haven'?t|wasn'?t) been (?:fixed|resolved)
        outages?
        broken
        broke
        crash(?:es|ed|ing)?
        errors?
        time ?outs?
        timed out
        fails
        failed
        failing
        failures?
        unreachable
        offline
        not responding
        unresponsive
        frozen
        freezes
        dead
        locked out
        no (?:internet|wifi|wi-fi|network|connection|signal|email|access)
        lost connection
        disconnect(?:s|ed|ing)
        bsod
        blue screen
        bad gateway
        service unavailable
        internal server error
        gateway timeout
        down
        ne (?:marche|fonctionne|répond) (?:pas|plus)
        (?:marche|fonctionne) (?:pas|plus)
        en panne
        pannes?
        plant(?:é|ée|e|ent)
        hors service
        erreurs?
        impossible de (?:se |me )?(?:connecter|co|accéder|imprimer|ouvrir)
        geht(?: \w+){0,3} nicht
        funktioniert(?: \w+){0,3} nicht
        nicht (?:mehr )?(?:funktioniert|geht|läuft)
        kaputt
        ausgefallen
        ausfall
        störung
        fehler(?:meldung)?
        abgestürzt
        stürzt(?: \w+)? ab
        kein (?:internet|netz|wlan|zugriff)
        plus (?:de|d'|aucun) ?(?:réseau|wifi|wi-fi|connexion|internet|accès|mail|mails)
        keine verbindung
        nicht erreichbar
        no funciona
        no va
        no anda
        caíd[oa]
        se (?:ha )?cayó
        se (?:ha |han )?ca(?:e|en|ído)
        no carga
        no responde
        no puedo (?:entrar|conectar(?:me)?|acceder|iniciar sesión|imprimir)
        sin (?:internet|conexión|red|wifi)
        fall[aoó]
        """
    ),
    "frustration": _lines(
        r"""
        epic ?fail
        fail
        ugh+
        argh+
        grr+
        wtf
        ffs
        smh
        fml
        seriously
        ridiculous
        useless
        unacceptable
        annoying
        frustrat\w*
        fed up
        sick of
        tired of
        nightmare
        joke
        worst
        j'en ai marre
        marre
        ras le bol
        nervt
        genervt
        harto
        qué asco
        """
    ),
    "trouble": _lines(
        r"""
        slow
        sluggish
        laggy
        lagging
        buggy
        bugs?
        bugu?é
        glitch\w*
        issues?
        problems?
        trouble
        struggling
        anyone else
        is it just me
        help
        please fix
        fix (?:it|this)
        why (?:is|does|do|can'?t|won'?t|isn'?t)
        still waiting
        on hold
        no (?:response|reply|answer)
        (?:trop|très|super) lent
        problème
        aide
        langsam
        problem
        hilfe
        lento
        problema
        ayuda
        """
    ),
    "repeat": _lines(
        r"""
        yet again
        once again
        again
        still
        as usual
        (?:second|third|fourth|fifth|nth|\d+(?:st|nd|rd|th)) time
        every (?:single )?(?:day|time|morning|week|monday)
        all (?:day|morning|week)
        for (?:the )?(?:last |past )?(?:\d+|two|three|four|five|several|many) (?:hours|days|weeks)
        since (?:this morning|yesterday|monday|last week)
        (?:hours|days) now
        une fois de plus
        à nouveau
        de nouveau
        encore
        toujours
        depuis (?:ce matin|hier|des heures|\d+)
        schon wieder
        immer noch
        wieder
        ständig
        seit (?:heute morgen|gestern|stunden|tagen|\d+)
        otra vez
        de nuevo
        todavía
        sigue sin
        desde (?:esta mañana|ayer|hace)
        """
    ),
    "positive": _lines(
        r"""
        thanks
        thank you
        thx
        ty
        fixed
        resolved
        sorted
        solved
        works? (?:now|again|fine|great|perfectly)
        working (?:now|again|fine)
        back (?:up|online|to normal)
        up and running
        (?:great|good|nice) (?:job|work)
        well done
        shout ?out
        kudos
        appreciate\w*
        awesome
        amazing
        love
        brilliant
        lifesaver
        hero
        merci
        vielen dank
        danke
        gracias
        résolu
        réparé
        fonctionne à nouveau
        (?:geht|funktioniert) wieder(?! nicht)
        ya funciona
        funciona de nuevo
        arreglado
        """
    ),
}
_URGENCY_CUES = _lines(
    r"""
    everyone
    everybody
    all users
    all (?:staff|employees|of us)
    (?:whole|entire) (?:floor|team|office|building|company|department|site|org\w*|school|campus)
    (?:company|org|site|campus)[- ]?wide
    (?:nobody|no one|noone) can
    can'?t work
    cannot work
    deadlines?
    urgent\w*
    asap
    critical
    payroll
    emergency
    production
    prod
    locked out
    outages?
    offline
    unreachable
    down
    tout le monde
    personne ne peut
    en panne
    dringend
    alle
    niemand kann
    ausgefallen
    todos
    nadie puede
    caíd[oa]
    """
)
# Praise that only reads as irony next to a failure ("Great, the VPN dropped again", "Na toll,
# Drucker kaputt", "Génial, plus de réseau", "me encanta cuando se cae el correo", "🙄"): counted
# as sarcasm only when the post also has an outage or repeat cue and no sign that something was
# fixed (unless it broke again).
_IRONY = re.compile(
    r"(?<!\w)(?:"
    r"(?:oh,? |just |how |so )?(?:great|perfect|wonderful|fantastic|brilliant|lovely|awesome|amazing|terrific|super"
    r"|superb|excellent|splendid|marvell?ous|nice one|good job|well done)(?: stuff| job)?\s*(?:[,!…]|\.{2,}|\s-)"
    r"|(?:i |you )?(?:just |gotta |got to |(?:don'?t )?you just |really )?love (?:it )?(?:when|how|that)"
    r"|thanks? (?:a lot|so much|again|a bunch|heaps)(?=,? (?:it|for|the|@|our|my|to|you))"
    r"|cheers for that|my favou?rite|what a (?:great|lovely|fantastic|wonderful|perfect|fun) (?:start|way|day|morning|week)"
    r"|nothing (?:like|beats)|living the dream|fun times|love to see it|best \w+ ever|10/10|/s"
    r"|(?:oh,? )?(?:génial|super|parfait|merveilleux|magnifique|formidable|top|bravo|chapeau|trop bien|trop top)"
    r"\s*(?:[,!…]|\.{2,}|\s-)"
    r"|j'adore (?:quand|comment|le fait que|ce|ces)|quel bonheur|quelle joie|quel plaisir|merci (?:beaucoup|bien|encore)"
    r"(?=,? (?:la|le|les|pour|à|au|aux|@))|vive (?:le|la|les)|c'est beau|on adore"
    r"|(?:na |oh,? |echt |wie )?(?:toll|super|klasse|prima|herrlich|wunderbar|perfekt|großartig|spitze|genial|bravo)"
    r"\s*(?:[,!…]|\.{2,}|\s-)"
    r"|na (?:toll|super|klasse|prima|bravo)|ich liebe es,? wenn|(?:vielen )?dank auch|läuft bei uns|juhu|wie schön"
    r"|(?:oh,? |qué )?(?:genial|perfecto|maravilloso|estupendo|fantástico|magnífico|bravo|maravilla)\s*(?:[,!…]|\.{2,}|\s-)"
    r"|me encanta (?:cuando|que|cómo|como)|qué (?:ilusión|alegría|gusto|bien)|(?:muchas )?gracias por (?:tanto|nada)"
    r"|mil gracias,? (?:por|a|al)|olé"
    r")(?!\w)"
)
_IRONY_EMOJI = ("🙄", "🙃", "😒", "👏")
_FIX_CUE = re.compile(r"fix|resol|sort|solv|work|back|running|répar|fonctionne|geht|funktion|funciona|arregl")
# Well-known consumer and public services, and providers whose outages make the news: a failure
# there is another company's outage, not a service the organisation runs (a catalogue that names
# one of them takes it back: pipeline.prepare).
_ELSEWHERE = re.compile(
    r"(?<!\w)(?:netflix|spotify|youtube|disney\+|disney plus|hulu|prime video|twitch|playstation(?: network)?|psn"
    r"|xbox(?: live)?|nintendo|fortnite|roblox|discord|reddit|twitter|instagram|facebook|whatsapp|tiktok|snapchat"
    r"|chatgpt|tinder|aws|amazon web services|us-east-1|cloudflare|fastly|akamai|crowdstrike|amazon|ebay|uber"
    r"|uber eats|lyft|deliveroo|just eat|glovo|cabify|airbnb|booking\.com|ryanair|easyjet|lufthansa|iberia"
    r"|air france|sncf(?: connect)?|ratp|deutsche bahn|db navigator|renfe|ouigo|paypal|revolut|n26|bizum|sparkasse"
    r"|bbva|santander|caixabank|livebox|freebox|sfr|bouygues|vodafone|telekom|movistar|verizon|comcast|xfinity"
    r"|at&t|virgin media|impots\.gouv|ameli|doctolib|elster|agencia tributaria"
    r"|(?:my|mon|ma|mein|meine|meiner|mi) (?:bank(?:ing)?[- ]app|banque|bank|banco)|banking[- ]app"
    r"|appli (?:bancaire|de ma banque)|app del banco|half the internet|la moitié d'internet|das halbe internet"
    r"|medio internet|media internet)(?!\w)"
)
_EMOTICONS = re.compile(
    r"(?P<frustration>>?[:;=]'?-?\(+|:-?/(?!/)|-_-)"
    r"|(?P<positive>(?<!\w)[:;=]-?[)d](?!\w))"
)
_EMOTICON_MARKS = (":", ";", "=", "-_-")
# Emoji are found with substring tests: a regex class of astral characters is ~100x slower.
_EMOJI: dict[str, tuple[str, ...]] = {
    "frustration": (*"😡😠🤬😤🙄😩😫😭😞😒🤦💩👎😑😣😖", "ಠ_ಠ"),
    "positive": tuple("👍🙏❤💯🎉😊🙂😀😃🥳"),
}
_EMOJI_FIRST = frozenset(emoji[0] for emojis in _EMOJI.values() for emoji in emojis)

# "down" is the commonest outage word on social media but also lives in idioms.
_DOWN_IDIOMS = re.compile(
    r"\b(?:sit|sat|calm|slow|settle|write|wrote|lie|lay|upside|hands|turned|turn|wind"
    r"|count|look|step|jot|boil|narrow|scroll|put|tone|cool|thumbs|knock|walk|walked)"
    r"\s+down\b"
    r"|\bdown\s+(?:the\s+)?(?:hall|street|road|stairs|corridor|line|here|there|under|town)\b"
)
_NEGATOR = (
    r"(?:\bnot|\bnever|n't|\bno|\bwithout|\byet to be|\bto be|\bget (?:it|this|that)"
    r"|\bpas|\bnicht)"
)
_BLOCK_REACH = 80
# Spans inside which a hit of that kind does not count ("sit down", "not really fixed").
_BLOCKERS: dict[str, re.Pattern[str]] = {
    "outage": _DOWN_IDIOMS,
    "urgency": _DOWN_IDIOMS,
    "positive": re.compile(
        _NEGATOR + r"\s+(?:\w+\s+){0,2}?"
        r"(?:fixed|resolved|sorted|solved|work\w*|thanks?|appreciated?)\b"
    ),
    "repeat": re.compile(
        r"(?<!not )(?<!n't )"
        r"\b(?:works?|working|up|online|back|fine|geht|funktioniert|funciona|fonctionne)"
        r"\s+(?:\w+\s+)?(?:again|wieder|de nuevo|à nouveau)\b(?! nicht)"
    ),
}


def _alternation(cues: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    groups = "|".join(f"(?P<{kind}>{'|'.join(parts)})" for kind, parts in cues.items())
    # Every cue starts with a word character, so a match can only begin where a word does:
    # trying there alone, rather than at every word boundary, halves the scan.
    return re.compile(rf"(?<!\w)(?=\w)(?:{groups})\b")


_WORDS = _alternation(_WORD_CUES)
_URGENCY = _alternation({"urgency": _URGENCY_CUES})


def scan(lowered: str, tags: frozenset[str] = frozenset()) -> list[Hit]:
    """Return the distinct cues found in lowercased text and its hashtags."""
    found = list(_WORDS.finditer(lowered))
    if any(mark in lowered for mark in _EMOTICON_MARKS):
        found.extend(_EMOTICONS.finditer(lowered))
    hits = [Hit(kind, cue) for kind, cue in _unblocked(found, lowered)]
    if not lowered.isascii():
        hits.extend(_emoji_hits(lowered))
    hits.extend(Hit("sarcasm", "#" + tag) for tag in sorted(tags & SARCASM_TAGS))
    hits.extend(_irony_hits(lowered, hits))
    hits.extend(Hit("elsewhere", cue) for cue in dict.fromkeys(m.group() for m in _ELSEWHERE.finditer(lowered)))
    return hits


def _irony_hits(lowered: str, hits: list[Hit]) -> list[Hit]:
    """Praise or an eye-roll next to a failure, where nothing says the failure is over."""
    kinds = {hit.kind for hit in hits}
    if not kinds & {"outage", "repeat"}:
        return []
    fixed = any(hit.kind == "positive" and _FIX_CUE.search(hit.cue) for hit in hits)
    if fixed and "repeat" not in kinds:
        return []
    said = {hit.cue for hit in hits if hit.kind == "sarcasm"}
    cues = [match.group().strip(" ,!.…-") for match in _IRONY.finditer(lowered)]
    cues.extend(emoji for emoji in _IRONY_EMOJI if emoji in lowered)
    return [Hit("sarcasm", cue) for cue in dict.fromkeys(cues) if cue and not any(old in cue for old in said)]


def urgency_cues(lowered: str) -> tuple[str, ...]:
    """Return the cues that make a complaint high urgency (outage, everyone, deadline...)."""
    found = list(_URGENCY.finditer(lowered))
    return tuple(cue for _, cue in _unblocked(found, lowered))


def _emoji_hits(lowered: str) -> list[Hit]:
    if _EMOJI_FIRST.isdisjoint(lowered):
        return []
    return [Hit(kind, emoji) for kind, emojis in _EMOJI.items() for emoji in emojis if emoji in lowered]


def _unblocked(found: list[re.Match[str]], lowered: str) -> dict[tuple[str, str], None]:
    """(kind, cue) pairs in order of appearance, without duplicates or blocked spans."""
    kept: dict[tuple[str, str], None] = {}
    for match in found:
        kind = match.lastgroup or ""
        if not _blocked(kind, match, lowered):
            kept[(kind, match.group())] = None
    return kept


def _blocked(kind: str, match: re.Match[str], lowered: str) -> bool:
    blocker = _BLOCKERS.get(kind)
    if blocker is None:
        return False
    start, end = match.span()
    # Searching only near the cue keeps long posts cheap; blockers are a few words long.
    window = blocker.finditer(lowered, max(0, start - _BLOCK_REACH), end + _BLOCK_REACH)
    return any(other.start() < end and start < other.end() for other in window)
