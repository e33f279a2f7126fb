"""The data protection officer's page (issue 17): every patient's consent by pseudonym, and a
patient's data-use report (PDF or JSON) asked by pseudonym or by the source identifier, which is
hashed with the project's key and never stored. A plain form POST, so that the identifier never
appears in an address or a log line."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from active_learning.services import data_use, data_use_pdf
from annotations import permissions, selectors
from annotations.access import project_for
from annotations.services import audit
from annotations.services.errors import DomainError

FORMATS = ("pdf", "json")


@login_required
def data_use_page(request: HttpRequest, project_pk: int) -> HttpResponse:
    project = project_for(
        request,
        project_pk,
        "data_use",
        "view",
        "The data-use page is for the project's data protection officer, leads and admins.",
    )
    error = ""
    asked = {"pseudonym": "", "format": "pdf"}
    if request.method == "POST":
        asked = {
            "pseudonym": request.POST.get("pseudonym", "").strip(),
            "format": request.POST.get("format", "pdf"),
        }
        identifier = request.POST.get("patient_id", "").strip()
        if asked["format"] not in FORMATS:
            error = f"format must be one of {list(FORMATS)}."
        elif not (asked["pseudonym"] or identifier):
            error = "Name the patient by pseudonym or by the patient ID."
        else:
            try:
                report = data_use.report(
                    project=project,
                    pseudonym=asked["pseudonym"],
                    identifier=identifier,
                    actor=request.user,
                    request=request,
                )
            except DomainError as exc:
                error = exc.message
            else:
                name = f"data-use-{report['patient']['pseudonym']}"
                if asked["format"] == "pdf":
                    response = HttpResponse(
                        data_use_pdf.pdf(report), content_type="application/pdf"
                    )
                else:
                    response = HttpResponse(
                        json.dumps(report, indent=2), content_type="application/json"
                    )
                response["Content-Disposition"] = f'attachment; filename="{name}.{asked["format"]}"'
                return response
    can_see_consent = permissions.allowed(request.user, project.pk, "consent", "view")
    patients = list(selectors.patient_consents(project)) if can_see_consent else []
    audit.record(
        action="patient.consent_list", actor=request.user, project_id=project.pk, request=request
    )
    return render(
        request,
        "frontend/data_use.html",
        {"project": project, "patients": patients, "error": error, "asked": asked},
        status=400 if error else 200,
    )
