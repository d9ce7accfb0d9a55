"""Service.description: what a service does, which the classifier matches posts against.

The default catalogue (migration 0002) gets a description per service; a description an admin
already wrote is kept.
"""

from django.db import migrations, models

DESCRIPTIONS = {
    "helpdesk": "IT service desk and support line: tickets, requests, callbacks, phone and chat support for staff "
    "(support informatique, assistance, IT-Support, Servicedesk, soporte, mesa de ayuda).",
    "vpn": "VPN remote access to the company network from home or while travelling "
    "(accès à distance, télétravail, Fernzugriff, Homeoffice, acceso remoto, teletrabajo).",
    "email": "Email and calendars: Outlook, mailboxes, sending and receiving mail, shared inboxes "
    "(courriel, boîte mail, E-Mail, Postfach, correo, bandeja de entrada).",
    "wifi": "Office Wi-Fi and wireless network access for laptops and phones in the buildings "
    "(réseau sans fil, WLAN, red inalámbrica).",
    "sso": "Single sign-on, logins, passwords and multi-factor authentication for company accounts "
    "(connexion, mot de passe, Anmeldung, Passwort, inicio de sesión, contraseña).",
    "portal": "Self-service portal and intranet where staff request IT services and find help articles "
    "(portail, Mitarbeiterportal, portal del empleado).",
    "printer": "Printing, scanning and copying on office printers and multifunction devices "
    "(imprimante, Drucker, impresora).",
    "laptop": "Company laptops, desktops and docking stations: hardware, repairs and replacements "
    "(ordinateur portable, poste de travail, Rechner, Laptop, portátil, ordenador).",
    "video": "Video calls, online meetings and meeting-room equipment: Teams, Zoom, screens and cameras "
    "(visioconférence, salle de réunion, Videokonferenz, Besprechungsraum, videollamada, sala de reuniones).",
    "phone": "Telephony: desk phones, softphones, voicemail and the company phone lines "
    "(téléphone, standard, Telefon, Telefonanlage, teléfono, centralita).",
    "network": "Office network and internet connectivity: cabled LAN, DNS and firewall "
    "(réseau, connexion internet, Netzwerk, red, conexión).",
    "storage": "File storage and sharing: shared drives, OneDrive, SharePoint and network folders "
    "(lecteur réseau, partage de fichiers, Netzlaufwerk, Dateiablage, unidad de red, carpetas compartidas).",
    "erp": "ERP business applications: SAP, payroll, expenses, timesheets and invoicing "
    "(paie, notes de frais, Gehaltsabrechnung, Spesen, nómina, gastos).",
    "website": "The organisation's public website and its pages (site web, Webseite, sitio web).",
    "app": "The organisation's mobile app for iOS and Android (application mobile, App, aplicación móvil).",
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
    dependencies = [("socialitsm", "0017_major_incident_work")]

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
