import json

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import TABLE

UPSERT = f"""
INSERT INTO {TABLE} (email, first_name, last_name, title, company, payload)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (email) DO UPDATE SET
    first_name = EXCLUDED.first_name,
    last_name = EXCLUDED.last_name,
    title = EXCLUDED.title,
    company = EXCLUDED.company,
    payload = EXCLUDED.payload,
    updated_at = now()
RETURNING id
"""


@csrf_exempt
@require_POST
def baseline_submit(request):
    """Parse the form payload, check the email, one upsert, answer 201 with the id."""
    try:
        data = json.loads(request.body)
    except ValueError:
        return JsonResponse({"message": "Body is not valid JSON."}, status=400)
    email = str(data.get("email", "")).strip().lower() if isinstance(data, dict) else ""
    if "@" not in email:
        return JsonResponse({"message": "A valid email is required."}, status=400)
    with connection.cursor() as cursor:
        cursor.execute(
            UPSERT,
            [
                email,
                str(data.get("first_name", ""))[:100],
                str(data.get("last_name", ""))[:100],
                str(data.get("title", ""))[:150],
                str(data.get("company", ""))[:200],
                json.dumps(data),
            ],
        )
        (row_id,) = cursor.fetchone()
    return JsonResponse({"id": row_id}, status=201)
