"""The words and weights the benchmark data set draws from: names, titles, companies, sources,
forms, stage and interaction mixes. Kept apart from the loaders so the shape of the data set can
be tuned in one place without touching how it is written.
"""

from leads.demo import FIRST, FIRST_INTL, LAST

# Sample names are shared with the demo data set (leads/demo.py).
FIRST_NAMES = FIRST
UNICODE_FIRST_NAMES = FIRST_INTL
LAST_NAMES = LAST
TITLES = (
    ("CEO", 3),
    ("CTO", 2),
    ("VP Marketing", 4),
    ("VP Sales", 3),
    ("Head of Growth", 4),
    ("Head of Marketing", 5),
    ("Director of Demand Generation", 4),
    ("Marketing Manager", 12),
    ("Marketing Operations Manager", 5),
    ("Sales Manager", 6),
    ("Product Manager", 6),
    ("Software Engineer", 10),
    ("Consultant", 6),
    ("Analyst", 8),
    ("Marketing Specialist", 8),
    ("Student", 5),
    ("Intern", 3),
    ("", 6),
)
COMPANY_A = [
    "North",
    "Blue",
    "Bright",
    "Swift",
    "Iron",
    "Silver",
    "Green",
    "Red",
    "Clear",
    "Deep",
    "High",
    "True",
    "Open",
    "Prime",
    "Core",
    "Next",
    "Alpha",
    "Delta",
    "Nova",
    "Terra",
    "Urban",
    "Polar",
    "Solar",
    "Lunar",
    "Rapid",
    "Smart",
    "Bold",
    "Quiet",
    "Grand",
    "Little",
    "Stone",
    "Cedar",
    "Maple",
    "Oak",
    "River",
    "Lake",
    "Summit",
    "Harbor",
    "Vertex",
]
COMPANY_B = [
    "wind",
    "field",
    "stone",
    "ware",
    "works",
    "labs",
    "logic",
    "systems",
    "data",
    "cloud",
    "soft",
    "metrics",
    "point",
    "path",
    "bridge",
    "gate",
    "forge",
    "scale",
    "stack",
    "flow",
    "mind",
    "wave",
    "line",
    "base",
    "craft",
    "hub",
    "net",
    "sense",
    "grid",
    "shift",
    "lane",
    "loop",
    "mark",
    "peak",
    "spark",
    "trail",
    "vista",
    "yard",
    "zone",
]
SIZE_BANDS = (("1-10", 8), ("11-50", 20), ("51-200", 25), ("201-1000", 25), ("1001-5000", 15), ("5000+", 7))
SIZE_EMPLOYEES = {"1-10": 6, "11-50": 30, "51-200": 120, "201-1000": 500, "1001-5000": 2500, "5000+": 12000}
INDUSTRIES = ("Software", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Logistics", "Media")
PLACES = (
    ("DE", "Berlin"),
    ("DE", "Munich"),
    ("US", "New York"),
    ("US", "Austin"),
    ("GB", "London"),
    ("FR", "Paris"),
    ("NL", "Amsterdam"),
    ("TR", "Istanbul"),
    ("TH", "Bangkok"),
    ("AE", "Dubai"),
    ("IN", "Bengaluru"),
    ("BR", "São Paulo"),
)
TIME_ZONES = {
    "DE": "Europe/Berlin",
    "US": "America/New_York",
    "GB": "Europe/London",
    "FR": "Europe/Paris",
    "NL": "Europe/Amsterdam",
    "TR": "Europe/Istanbul",
    "TH": "Asia/Bangkok",
    "AE": "Asia/Dubai",
    "IN": "Asia/Kolkata",
    "BR": "America/Sao_Paulo",
}
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "web.de", "icloud.com", "proton.me")
# source, channel, weight
SOURCES = (
    ("website", "inbound", 40),
    ("google_ads", "inbound", 12),
    ("linkedin", "inbound", 10),
    ("webinar", "event", 8),
    ("trade_show", "event", 6),
    ("import", "import", 8),
    ("referral", "manual", 4),
    ("partner", "api", 5),
    ("product", "product", 7),
)
# slug, name, kind, channel, channel weight
FORMS = (
    ("contact-us", "Contact us", "contact", "inbound", 10),
    ("demo-request", "Request a demo", "demo_request", "inbound", 25),
    ("ebook-funnel-metrics", "E-book: funnel metrics that matter", "content_download", "inbound", 5),
    ("webinar-scoring-101", "Webinar: lead scoring 101", "webinar", "event", 8),
    ("pricing-quote", "Pricing quote", "contact", "inbound", 15),
    ("newsletter", "Newsletter sign-up", "newsletter", "inbound", 1),
    ("trial-signup", "Start a free trial", "trial", "product", 20),
    ("expo-badge-scan", "Expo badge scan", "event", "event", 6),
)
# (stage, weight)
# Open MQLs/PQLs are few: reps answer them within the SLA, so only the last day or two's wait
# in a queue (about 70 per rep at 100k leads); everything older moved on.
STAGES = (
    ("visitor", 62),
    ("mql", 0.5),
    ("pql", 0.2),
    ("sal", 6),
    ("sql", 4.5),
    ("customer", 4),
    ("lost", 5),
    ("recycled", 11),
    ("disqualified", 6.8),
)
REJECTIONS = ("wrong_person", "no_budget_yet", "not_ready", "bad_data", "student", "no_response")
LOSSES = ("price", "competitor", "no_decision", "timing", "features")
# interaction type, weight
INTERACTION_TYPES = (
    ("page_view", 45),
    ("email_sent", 14),
    ("email_open", 10),
    ("email_click", 4),
    ("content_download", 4),
    ("webinar_registered", 2),
    ("webinar_attended", 1.5),
    ("event_attended", 0.5),
    ("trade_show_visit", 0.5),
    ("demo_request", 0.5),
    ("trial_started", 0.3),
    ("product_usage", 5),
    ("social_follow", 1),
    ("sms_sent", 0.5),
    ("sms_click", 0.2),
    ("email_bounce", 0.1),
    ("unsubscribe", 0.2),
)
PAGES = (
    ("/", 20),
    ("/pricing", 9),
    ("/features/scoring", 8),
    ("/features/nurturing", 6),
    ("/customers", 5),
    ("/blog/what-is-an-mql", 8),
    ("/blog/sla-between-marketing-and-sales", 6),
    ("/blog/lead-scoring-models", 7),
    ("/docs/api", 4),
    ("/careers", 3),
    ("/about", 4),
    ("/integrations", 5),
)
ASSETS = ("ebook-funnel-metrics", "whitepaper-scoring", "checklist-sla", "report-benchmarks-2026", "case-study-acme")
CAMPAIGNS = ("welcome", "re-nurture", "trial-to-paid", "newsletter-weekly", "webinar-invite", "product-update")
WEBINARS = ("scoring-101", "funnel-analytics", "nurture-that-works")
EVENTS = ("SaaS Expo Berlin", "MarTech London", "Growth Summit Austin")
FEATURES = ("dashboard", "rules", "sequences", "import", "api", "reports")

SITE = "https://www.leadfunnel.example"


def weighted(pairs):
    """(values, cumulative weights) of (value, ..., weight) pairs, for ``random.choices(cum_weights=...)``."""
    values = [p[0] for p in pairs]
    cum = []
    total = 0.0
    for p in pairs:
        total += p[-1]
        cum.append(total)
    return values, cum
