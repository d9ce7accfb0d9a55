"""Service.description: what a service does, which the classifier matches posts against.

The default catalogue (migration 0002) gets a description per service; a description an admin
already wrote is kept.
"""

from django.db import migrations, models

DESCRIPTIONS = {
    "helpdesk": "IT service desk and support line: tickets, requests, callbacks, phone and chat support for staff.",
    "vpn": "VPN remote access to the company network from home or while travelling.",
    "email": "Email and calendars: Outlook, mailboxes, sending and receiving mail, shared inboxes.",
    "wifi": "Office Wi-Fi and wireless network access for laptops and phones in the buildings.",
    "sso": "Single sign-on, logins, passwords and multi-factor authentication for company accounts.",
    "portal": "Self-service portal and intranet where staff request IT services and find help articles.",
    "printer": "Printing, scanning and copying on office printers and multifunction devices.",
    "laptop": "Company laptops, desktops and docking stations: hardware, repairs and replacements.",
    "video": "Video calls, online meetings and meeting-room equipment: Teams, Zoom, screens and cameras.",
    "phone": "Telephony: desk phones, softphones, voicemail and the company phone lines.",
    "network": "Office network and internet connectivity: cabled LAN, DNS and firewall.",
    "storage": "File storage and sharing: shared drives, OneDrive, SharePoint and network folders.",
    "erp": "ERP business applications: SAP, payroll, expenses, timesheets and invoicing.",
    "website": "The organisation's public website and its pages.",
    "app": "The organisation's mobile app for iOS and Android.",
}


def describe(apps, schema_editor):
    Service = apps.get_model("socialitsm", "Service")
    for slug, description in DESCRIPTIONS.items():
        Service.objects.filter(slug=slug, description="").update(description=description)


def undescribe(apps, schema_editor):
    Service = apps.get_model("socialitsm", "Service")
    for slug, description in DESCRIPTIONS.items():
        Service.objects.filter(slug=slug, description=description).update(description="")


class Migration(migrations.Migration):
    dependencies = [("socialitsm", "0013_post_details")]

    operations = [
        migrations.AddField(
            model_name="service",
            name="description",
            field=models.TextField(
                blank=True,
                default="",
                help_text=(
                    "What the service does, in a sentence or two (e.g. 'Meeting-room booking and room displays'); "
                    "the classifier matches posts that describe the service without naming it against this text."
                ),
            ),
        ),
        migrations.RunPython(describe, undescribe),
    ]
