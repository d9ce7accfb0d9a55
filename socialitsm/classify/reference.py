"""The default service catalogue, as migrations 0002 and 0018 seed it, for training and for
deployments whose catalogue is empty.

The decision learns how close a post is to "some service of an IT catalogue"; it is trained
against this catalogue and, at run time, reads the deployment's own catalogue, or this one when
no catalogue is given (e.g. `socialitsm_classify` without a database). Services are never
detected from it: only from the catalogue a deployment passes in.

`LANGUAGE_ALIASES` are the French, German and Spanish names of each default service (and
"password", which English posts use for the login service), as migration 0024 adds them.
"""

from __future__ import annotations

from .catalogue import ServiceEntry

LANGUAGE_ALIASES: dict[str, tuple[str, ...]] = {
    "helpdesk": (
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
    ),
    "vpn": (
        "accès à distance",
        "accès distant",
        "Fernzugriff",
        "Fernzugang",
        "acceso remoto",
        "conexión remota",
    ),
    "email": (
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
    ),
    "wifi": (
        "réseau sans fil",
        "W-LAN",
        "Funknetz",
        "red inalámbrica",
        "red wifi",
        "la red wifi",
        "la red inalámbrica",
    ),
    "sso": (
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
    ),
    "portal": ("portail", "Mitarbeiterportal", "portal del empleado", "autoservicio"),
    "printer": (
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
    ),
    "laptop": (
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
    ),
    "video": (
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
    ),
    "phone": (
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
    ),
    "network": (
        "réseau",
        "connexion internet",
        "pare-feu",
        "Netzwerk",
        "Internetverbindung",
        "la red",
        "red corporativa",
        "conexión a internet",
        "cortafuegos",
    ),
    "storage": (
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
    ),
    "erp": (
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
    ),
    "website": ("site web", "site internet", "Webseite", "Internetseite", "sitio web", "página web"),
    "app": ("application mobile", "l'appli", "die App", "mobile App", "aplicación móvil", "la app", "la aplicación"),
}

# Products and systems staff call a service by rather than by its catalogue name ("Concur ate my
# receipts", "Duo push keeps failing"), as migration 0028 adds them. Only names that mean the
# product: a plain word ("Box", "Sage", "Harvest", "Surface") would turn everyday posts into posts
# about a catalogue service.
PRODUCT_ALIASES: dict[str, tuple[str, ...]] = {
    "helpdesk": (
        "ServiceNow",
        "GLPI",
        "Zendesk",
        "Freshservice",
        "TOPdesk",
        "Matrix42",
        "Jira Service Management",
        "IT chatbot",
        "departamento de sistemas",
    ),
    "vpn": (
        "RSA token",
        "clé RSA",
        "FortiClient",
        "Pulse Secure",
        "Ivanti Secure",
        "Citrix Gateway",
        "OpenVPN",
        "WireGuard",
        "split tunnel",
    ),
    "email": ("Thunderbird", "Lotus Notes", "Zimbra", "Mimecast", "Proofpoint", "calendar invite"),
    "sso": (
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
    ),
    "printer": ("PaperCut", "plotter", "photocopier", "toner"),
    "laptop": ("Intune", "Jamf", "ThinkPad", "Chromebook", "iMac", "Surface Pro", "Surface Laptop", "workstation"),
    "video": ("Google Meet", "GoTo Meeting", "Polycom", "Poly Studio", "BlueJeans", "Slack", "room booking"),
    "phone": (
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
    ),
    "network": ("Zscaler", "proxy", "Meraki", "SD-WAN", "MPLS", "web filter", "Standleitung"),
    "storage": (
        "Egnyte",
        "Nextcloud",
        "file server",
        "team drive",
        "H: drive",
        "S: drive",
        "DMS",
        "GED",
    ),
    "erp": (
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
    ),
    "app": ("staff app", "company app"),
}

_ENGLISH = (
    ServiceEntry(
        "helpdesk",
        ("Service desk", "helpdesk", "help desk", "service desk", "IT support", "support line", "ticket"),
        "IT service desk and support line: tickets, requests, callbacks, phone and chat support for staff "
        "(support informatique, assistance, IT-Support, Servicedesk, soporte, mesa de ayuda).",
    ),
    ServiceEntry(
        "vpn",
        ("VPN", "GlobalProtect", "AnyConnect", "remote access", "Cisco VPN"),
        "VPN remote access to the company network from home or while travelling "
        "(accès à distance, télétravail, Fernzugriff, Homeoffice, acceso remoto, teletrabajo).",
    ),
    ServiceEntry(
        "email",
        ("Email", "e-mail", "mail", "Outlook", "inbox", "Exchange", "mailbox", "webmail"),
        "Email and calendars: Outlook, mailboxes, sending and receiving mail, shared inboxes "
        "(courriel, boîte mail, E-Mail, Postfach, correo, bandeja de entrada).",
    ),
    ServiceEntry(
        "wifi",
        ("Wi-Fi", "wifi", "wi fi", "wireless", "WLAN", "eduroam", "hotspot"),
        "Office Wi-Fi and wireless network access for laptops and phones in the buildings "
        "(réseau sans fil, WLAN, red inalámbrica).",
    ),
    ServiceEntry(
        "sso",
        ("Single sign-on", "SSO", "login", "log in", "sign in", "Okta", "MFA", "2FA", "password reset", "Azure AD"),
        "Single sign-on, logins, passwords and multi-factor authentication for company accounts "
        "(connexion, mot de passe, Anmeldung, Passwort, inicio de sesión, contraseña).",
    ),
    ServiceEntry(
        "portal",
        ("Self-service portal", "portal", "self-service", "intranet", "service portal"),
        "Self-service portal and intranet where staff request IT services and find help articles "
        "(portail, Mitarbeiterportal, portal del empleado).",
    ),
    ServiceEntry(
        "printer",
        ("Printing", "printer", "printers", "print", "printing", "scanner", "copier"),
        "Printing, scanning and copying on office printers and multifunction devices (imprimante, Drucker, impresora).",
    ),
    ServiceEntry(
        "laptop",
        ("Laptops and desktops", "laptop", "notebook", "docking station", "dock", "desktop", "PC", "MacBook"),
        "Company laptops, desktops and docking stations: hardware, repairs and replacements "
        "(ordinateur portable, poste de travail, Rechner, Laptop, portátil, ordenador).",
    ),
    ServiceEntry(
        "video",
        ("Video conferencing", "Teams", "Microsoft Teams", "Zoom", "video call", "Webex", "meeting room"),
        "Video calls, online meetings and meeting-room equipment: Teams, Zoom, screens and cameras "
        "(visioconférence, salle de réunion, Videokonferenz, Besprechungsraum, videollamada, sala de reuniones).",
    ),
    ServiceEntry(
        "phone",
        ("Telephony", "phone", "desk phone", "softphone", "telephone", "voicemail"),
        "Telephony: desk phones, softphones, voicemail and the company phone lines "
        "(téléphone, standard, Telefon, Telefonanlage, teléfono, centralita).",
    ),
    ServiceEntry(
        "network",
        ("Network", "LAN", "ethernet", "internet", "connectivity", "DNS", "firewall"),
        "Office network and internet connectivity: cabled LAN, DNS and firewall "
        "(réseau, connexion internet, Netzwerk, red, conexión).",
    ),
    ServiceEntry(
        "storage",
        ("File storage", "OneDrive", "file share", "SharePoint", "shared drive", "network drive", "Dropbox"),
        "File storage and sharing: shared drives, OneDrive, SharePoint and network folders "
        "(lecteur réseau, partage de fichiers, Netzlaufwerk, Dateiablage, unidad de red, carpetas compartidas).",
    ),
    ServiceEntry(
        "erp",
        ("ERP", "SAP", "payroll", "expenses", "Workday", "timesheet", "invoicing"),
        "ERP business applications: SAP, payroll, expenses, timesheets and invoicing "
        "(paie, notes de frais, Gehaltsabrechnung, Spesen, nómina, gastos).",
    ),
    ServiceEntry(
        "website",
        ("Public website", "website", "web site", "homepage", "home page"),
        "The organisation's public website and its pages (site web, Webseite, sitio web).",
    ),
    ServiceEntry(
        "app",
        ("Mobile app", "mobile app", "the app", "iOS app", "Android app"),
        "The organisation's mobile app for iOS and Android (application mobile, App, aplicación móvil).",
    ),
)
REFERENCE_CATALOGUE = tuple(
    ServiceEntry(
        entry.slug,
        (*entry.names, *LANGUAGE_ALIASES.get(entry.slug, ()), *PRODUCT_ALIASES.get(entry.slug, ())),
        entry.description,
    )
    for entry in _ENGLISH
)
