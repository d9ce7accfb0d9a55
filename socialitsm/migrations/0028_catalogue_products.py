"""Product and system names staff call the default services by ("Concur", "Duo push", "ServiceNow",
"FortiClient", "Intune", "Zscaler", "DATEV", "Zimbra"), so a post that names a product rather than
the service finds it.

Added like migration 0024's names: to a default service (migration 0002) only while it keeps its
default name and lacks the alias (compared without case); a service an admin renamed is left as it is.
Going back removes these names from the services that still have their default name.
"""

from django.db import migrations

DEFAULT_NAMES = {
    "helpdesk": "Service desk",
    "vpn": "VPN",
    "email": "Email",
    "sso": "Single sign-on",
    "printer": "Printing",
    "laptop": "Laptops and desktops",
    "video": "Video conferencing",
    "phone": "Telephony",
    "network": "Network",
    "storage": "File storage",
    "erp": "ERP",
    "app": "Mobile app",
}
ALIASES = {
    "helpdesk": [
        "ServiceNow",
        "GLPI",
        "Zendesk",
        "Freshservice",
        "TOPdesk",
        "Matrix42",
        "Jira Service Management",
        "IT chatbot",
        "departamento de sistemas",
    ],
    "vpn": [
        "RSA token",
        "clé RSA",
        "FortiClient",
        "Pulse Secure",
        "Ivanti Secure",
        "Citrix Gateway",
        "OpenVPN",
        "WireGuard",
        "split tunnel",
    ],
    "email": [
        "Thunderbird",
        "Lotus Notes",
        "Zimbra",
        "Mimecast",
        "Proofpoint",
        "calendar invite",
    ],
    "sso": [
        "Authenticator",
        "Microsoft Entra",
        "Entra ID",
        "OneLogin",
        "PingID",
        "Ping Identity",
        "Keycloak",
        "YubiKey",
        "Duo Mobile",
        "Duo push",
        "Duo Security",
        "conditional access",
        "autenticador",
        "doble factor",
    ],
    "printer": [
        "PaperCut",
        "plotter",
        "photocopier",
        "toner",
    ],
    "laptop": [
        "Intune",
        "Jamf",
        "ThinkPad",
        "Chromebook",
        "iMac",
        "Surface Pro",
        "Surface Laptop",
        "workstation",
    ],
    "video": [
        "Google Meet",
        "GoTo Meeting",
        "Polycom",
        "Poly Studio",
        "BlueJeans",
        "Slack",
        "room booking",
    ],
    "phone": [
        "switchboard",
        "hunt group",
        "headset",
        "Zoom Phone",
        "Teams Phone",
        "Webex Calling",
        "3CX",
        "Avaya",
        "Mitel",
        "Tischtelefon",
        "poste fixe",
        "ligne fixe",
    ],
    "network": [
        "Zscaler",
        "proxy",
        "Meraki",
        "SD-WAN",
        "MPLS",
        "web filter",
        "Standleitung",
    ],
    "storage": [
        "Egnyte",
        "Nextcloud",
        "file server",
        "team drive",
        "H: drive",
        "S: drive",
        "DMS",
        "GED",
    ],
    "erp": [
        "Concur",
        "Coupa",
        "SuccessFactors",
        "NetSuite",
        "Oracle Financials",
        "Dynamics 365",
        "Xero",
        "QuickBooks",
        "DATEV",
        "Personio",
        "BambooHR",
        "ADP",
        "Lucca",
        "Kelio",
        "A3nom",
        "Meta4",
        "Kronos",
        "Dayforce",
        "finance system",
        "HR system",
        "procurement system",
        "purchase order",
        "leave booking",
        "holiday booking",
        "time tracking",
        "Navision",
        "Chorus Pro",
        "Octime",
        "SIRH",
        "Warenwirtschaft",
        "Materialwirtschaft",
        "Stundenzettel",
    ],
    "app": [
        "staff app",
        "company app",
    ],
}


def add_aliases(apps, schema_editor):
    Service = apps.get_model("socialitsm", "Service")
    for service in Service.objects.filter(slug__in=list(ALIASES)):
        if service.name != DEFAULT_NAMES[service.slug] or not isinstance(service.aliases, list):
            continue
        known = {str(alias).casefold() for alias in service.aliases}
        missing = [alias for alias in ALIASES[service.slug] if alias.casefold() not in known]
        if missing:
            service.aliases = [*service.aliases, *missing]
            service.save(update_fields=["aliases"])


def remove_aliases(apps, schema_editor):
    Service = apps.get_model("socialitsm", "Service")
    for service in Service.objects.filter(slug__in=list(ALIASES)):
        if service.name != DEFAULT_NAMES[service.slug] or not isinstance(service.aliases, list):
            continue
        added = set(ALIASES[service.slug])
        kept = [alias for alias in service.aliases if alias not in added]
        if kept != service.aliases:
            service.aliases = kept
            service.save(update_fields=["aliases"])


class Migration(migrations.Migration):
    dependencies = [("socialitsm", "0027_search_reads")]

    operations = [migrations.RunPython(add_aliases, remove_aliases)]
