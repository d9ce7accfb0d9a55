"""French, German and Spanish names of the default services, so posts in those languages name them
(and "password" for the login service, which English posts use more than "password reset").

Each alias is added to a default service (migration 0002) only while that service keeps its
default name and lacks the alias (compared without case); a service an admin renamed is left as
it is. Going back removes these names from the services that still have their default name.
"""

from django.db import migrations

DEFAULT_NAMES = {
    "helpdesk": "Service desk",
    "vpn": "VPN",
    "email": "Email",
    "wifi": "Wi-Fi",
    "sso": "Single sign-on",
    "portal": "Self-service portal",
    "printer": "Printing",
    "laptop": "Laptops and desktops",
    "video": "Video conferencing",
    "phone": "Telephony",
    "network": "Network",
    "storage": "File storage",
    "erp": "ERP",
    "website": "Public website",
    "app": "Mobile app",
}
ALIASES = {
    "helpdesk": [
        "support informatique",
        "service informatique",
        "assistance informatique",
        "hotline",
        "centre de services",
        "IT-Support",
        "Servicedesk",
        "Service-Desk",
        "IT-Hotline",
        "IT-Abteilung",
        "Ticketsystem",
        "soporte técnico",
        "soporte",
        "soporte informático",
        "mesa de ayuda",
        "CAU",
        "servicio técnico",
        "departamento de informática",
    ],
    "vpn": [
        "accès à distance",
        "accès distant",
        "Fernzugriff",
        "Fernzugang",
        "acceso remoto",
        "conexión remota",
    ],
    "email": [
        "courriel",
        "messagerie",
        "boîte mail",
        "boîte aux lettres",
        "boîte de réception",
        "E-Mail",
        "Postfach",
        "Posteingang",
        "correo",
        "correo electrónico",
        "bandeja de entrada",
        "buzón de correo",
    ],
    "wifi": [
        "réseau sans fil",
        "W-LAN",
        "Funknetz",
        "red inalámbrica",
        "red wifi",
        "la red wifi",
        "la red inalámbrica",
    ],
    "sso": [
        "password",
        "mot de passe",
        "identifiant",
        "authentification",
        "double authentification",
        "Passwort",
        "Kennwort",
        "Anmeldung",
        "Authentifizierung",
        "Zwei-Faktor",
        "contraseña",
        "inicio de sesión",
        "iniciar sesión",
        "autenticación",
        "doble factor",
    ],
    "portal": [
        "portail",
        "Mitarbeiterportal",
        "portal del empleado",
        "autoservicio",
    ],
    "printer": [
        "imprimante",
        "imprimer",
        "photocopieuse",
        "copieur",
        "Drucker",
        "drucken",
        "Kopierer",
        "impresora",
        "imprimir",
        "escáner",
        "fotocopiadora",
    ],
    "laptop": [
        "ordinateur portable",
        "ordinateur",
        "PC portable",
        "poste de travail",
        "station d'accueil",
        "Dockingstation",
        "Docking-Station",
        "Rechner",
        "portátil",
        "ordenador",
        "ordenador portátil",
        "base de acoplamiento",
        "computadora",
        "compu",
    ],
    "video": [
        "visioconférence",
        "visio",
        "salle de réunion",
        "Videokonferenz",
        "Videocall",
        "Besprechungsraum",
        "Konferenzraum",
        "videollamada",
        "videoconferencia",
        "sala de reuniones",
    ],
    "phone": [
        "téléphone",
        "standard téléphonique",
        "messagerie vocale",
        "Telefon",
        "Telefonanlage",
        "Festnetz",
        "Diensthandy",
        "Firmenhandy",
        "teléfono",
        "centralita",
        "buzón de voz",
        "telefonía",
    ],
    "network": [
        "réseau",
        "connexion internet",
        "pare-feu",
        "Netzwerk",
        "Internetverbindung",
        "la red",
        "red corporativa",
        "conexión a internet",
        "cortafuegos",
    ],
    "storage": [
        "lecteur réseau",
        "partage réseau",
        "dossier partagé",
        "serveur de fichiers",
        "Netzlaufwerk",
        "Laufwerk",
        "Dateiablage",
        "Fileserver",
        "unidad de red",
        "unidad compartida",
        "carpeta compartida",
        "servidor de archivos",
    ],
    "erp": [
        "fiche de paie",
        "bulletin de paie",
        "logiciel de paie",
        "note de frais",
        "notes de frais",
        "feuille de temps",
        "Gehaltsabrechnung",
        "Lohnabrechnung",
        "Spesenabrechnung",
        "Reisekosten",
        "Zeiterfassung",
        "nómina",
        "nota de gastos",
        "hoja de horas",
        "facturación",
    ],
    "website": [
        "site web",
        "site internet",
        "Webseite",
        "Internetseite",
        "sitio web",
        "página web",
    ],
    "app": [
        "application mobile",
        "l'appli",
        "die App",
        "mobile App",
        "aplicación móvil",
        "la app",
        "la aplicación",
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
    dependencies = [("socialitsm", "0023_incident_workspace")]

    operations = [migrations.RunPython(add_aliases, remove_aliases)]
