"""Seed the default service catalogue, the agent and lead roles, and the incident counter."""

from django.db import migrations

CATALOGUE = [
    ("helpdesk", "Service desk", ["helpdesk", "help desk", "service desk", "IT support", "support line", "ticket"]),
    ("vpn", "VPN", ["GlobalProtect", "AnyConnect", "remote access", "Cisco VPN"]),
    ("email", "Email", ["e-mail", "mail", "Outlook", "inbox", "Exchange", "mailbox", "webmail"]),
    ("wifi", "Wi-Fi", ["wifi", "wi fi", "wireless", "WLAN", "eduroam", "hotspot"]),
    ("sso", "Single sign-on", ["SSO", "login", "log in", "sign in", "Okta", "MFA", "2FA", "password reset", "Azure AD", "Entra"]),
    ("portal", "Self-service portal", ["portal", "self-service", "intranet", "service portal"]),
    ("printer", "Printing", ["printer", "printers", "print", "printing", "scanner", "copier"]),
    ("laptop", "Laptops and desktops", ["laptop", "notebook", "docking station", "dock", "desktop", "PC", "MacBook", "ThinkPad"]),
    ("video", "Video conferencing", ["Teams", "Microsoft Teams", "Zoom", "video call", "Webex", "meeting room"]),
    ("phone", "Telephony", ["phone", "desk phone", "softphone", "telephone", "voicemail"]),
    ("network", "Network", ["LAN", "ethernet", "internet", "connectivity", "DNS", "firewall"]),
    ("storage", "File storage", ["OneDrive", "file share", "SharePoint", "shared drive", "network drive", "Dropbox"]),
    ("erp", "ERP", ["SAP", "payroll", "expenses", "Workday", "timesheet", "invoicing"]),
    ("website", "Public website", ["website", "web site", "homepage", "home page"]),
    ("app", "Mobile app", ["mobile app", "the app", "iOS app", "Android app"]),
]
ROLES = ["socialitsm-agents", "socialitsm-leads"]


def seed(apps, schema_editor):
    Service = apps.get_model("socialitsm", "Service")
    Group = apps.get_model("auth", "Group")
    Counter = apps.get_model("socialitsm", "IncidentCounter")
    for slug, name, aliases in CATALOGUE:
        Service.objects.get_or_create(slug=slug, defaults={"name": name, "aliases": aliases})
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    Counter.objects.get_or_create(name="incident", defaults={"value": 1000})


def unseed(apps, schema_editor):
    apps.get_model("socialitsm", "Service").objects.filter(slug__in=[c[0] for c in CATALOGUE], incidents__isnull=True).delete()
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES, user__isnull=True).delete()
    apps.get_model("socialitsm", "IncidentCounter").objects.filter(name="incident", value=1000).delete()


class Migration(migrations.Migration):
    dependencies = [("socialitsm", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, unseed)]
