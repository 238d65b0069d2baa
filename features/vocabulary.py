"""The data contract's controlled vocabularies (docs/architecture.md, "Data contract")."""

INCIDENT_TYPES: tuple[str, ...] = (
    "domestic_abuse",
    "violence_with_injury",
    "violence_without_injury",
    "sexual_offence",
    "stalking_harassment",
    "asb",
    "criminal_damage",
    "theft",
    "public_order",
    "drugs",
    "child_concern",
    "missing_person",
    "mental_health_concern",
)
ROLES: tuple[str, ...] = ("victim", "perpetrator", "suspect", "subject")
TIERS: tuple[str, ...] = ("primary", "secondary", "tertiary")
SEXES: tuple[str, ...] = ("F", "M", "X", "U")
ETHNICITIES: tuple[str, ...] = ("White", "Asian", "Black", "Mixed", "Other", "Unknown")
YES_NO_UNKNOWN: tuple[str, ...] = ("Y", "N", "U")
#: How an incident came to police attention: reported by a victim or the public, or found proactively
#: (stop and search, patrol, warrants). The optional `incidents.attention` column; blank means unknown.
ATTENTION: tuple[str, ...] = ("reported", "proactive")

#: Types that make an incident high-harm whatever its harm weight (docs/architecture.md, "The as-of rule").
HIGH_HARM_TYPES: tuple[str, ...] = ("violence_with_injury", "sexual_offence")
#: Roles that count as offending involvement.
OFFENDING_ROLES: tuple[str, ...] = ("perpetrator", "suspect")
