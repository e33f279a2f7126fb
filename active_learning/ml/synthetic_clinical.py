"""Clinical text, laboratory values and reports for the synthetic cases (used by ``synthetic``).

Everything is correlated with the ground-truth findings, with deliberate noise (generic
indications, abnormal labs in normal cases, missing labs) so the clinical context helps a model
without giving the answer away. Lab codes and units are LOINC / UCUM.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

# code, name, unit (UCUM), reference low, reference high
LAB_DEFINITIONS: dict[str, tuple[str, str, str, float, float]] = {
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.0, 5.0),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 11.0),
    "ntprobnp": (
        "33762-6",
        "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
        "pg/mL",
        0.0,
        125.0,
    ),
    "hgb": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 17.5),
    "temp": ("8310-5", "Body temperature", "Cel", 36.1, 37.2),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 95.0, 100.0),
    "rr": ("9279-1", "Respiratory rate", "/min", 12.0, 20.0),
}
# probability that a lab is absent from the case (the model must cope with missing values)
LAB_MISSING = {
    "crp": 0.25,
    "wbc": 0.2,
    "ntprobnp": 0.45,
    "hgb": 0.2,
    "temp": 0.1,
    "spo2": 0.1,
    "rr": 0.3,
}

INDICATIONS = {
    "consolidation": [
        "Fever and productive cough for {d} days. Evaluate for pneumonia.",
        "Cough, fever and pleuritic chest pain. ? pneumonia.",
        "Productive cough, crackles at the base on auscultation.",
    ],
    "effusion": [
        "Progressive dyspnoea and orthopnoea. ? pleural effusion.",
        "Shortness of breath, reduced breath sounds at the base.",
    ],
    "cardiomegaly": [
        "Dyspnoea on exertion and ankle swelling. ? heart failure.",
        "Worsening shortness of breath, bilateral leg oedema.",
    ],
    "nodule": [
        "Persistent cough for {w} weeks in a smoker.",
        "Haemoptysis. Evaluate for lung lesion.",
    ],
    "mass": [
        "Weight loss and haemoptysis. ? lung malignancy.",
        "Chronic cough and {k} kg weight loss over three months.",
    ],
    "pneumothorax": [
        "Sudden onset chest pain and breathlessness.",
        "Acute pleuritic chest pain while at rest. ? pneumothorax.",
    ],
}
GENERIC_INDICATIONS = [
    "Routine pre-operative chest radiograph.",
    "Pre-employment screening.",
    "Chest pain.",
    "Cough.",
    "Follow-up.",
    "Shortness of breath.",
    "Fall, rule out rib fracture.",
]
HISTORY_ITEMS = {
    "smoker": "Current smoker, {p} pack-years.",
    "heart_failure": "Known heart failure, on diuretics.",
    "weight_loss": "Unintentional weight loss.",
    "tall_young": "Tall, thin build.",
    "copd": "COPD.",
    "hypertension": "Hypertension.",
    "diabetes": "Type 2 diabetes mellitus.",
    "asthma": "Asthma.",
}


def _history_probabilities(findings: dict[str, bool]) -> dict[str, float]:
    lesion = findings["nodule"] or findings["mass"]
    heart = findings["cardiomegaly"] or findings["effusion"]
    return {
        "smoker": 0.75 if lesion or findings["pneumothorax"] else 0.2,
        "heart_failure": 0.6 if heart else 0.04,
        "weight_loss": 0.55 if findings["mass"] else 0.05,
        "tall_young": 0.6 if findings["pneumothorax"] else 0.03,
        "copd": 0.25 if lesion else 0.08,
        "hypertension": 0.5 if heart else 0.2,
        "diabetes": 0.12,
        "asthma": 0.06,
    }


def age_for(rng: np.random.Generator, findings: dict[str, bool]) -> int:
    """Age in years, typical for the findings (young for pneumothorax, older for tumours)."""
    if findings["pneumothorax"] and not any(findings[k] for k in ("mass", "cardiomegaly")):
        return int(rng.integers(18, 36))
    if findings["mass"] or findings["nodule"] or findings["cardiomegaly"]:
        return int(np.clip(rng.normal(68, 9), 40, 95))
    return int(rng.integers(20, 88))


def indication_and_history(
    rng: np.random.Generator, findings: dict[str, bool], age: int, sex: str
) -> tuple[str, str]:
    """Free-text indication and history; the indication names the main finding 75% of the time."""
    present = [name for name, on in findings.items() if on]
    if present and rng.random() < 0.75:
        options = INDICATIONS[present[int(rng.integers(len(present)))]]
        indication = options[int(rng.integers(len(options)))]
    else:
        indication = GENERIC_INDICATIONS[int(rng.integers(len(GENERIC_INDICATIONS)))]
    indication = indication.format(
        d=int(rng.integers(2, 8)), w=int(rng.integers(3, 12)), k=int(rng.integers(4, 15))
    )
    person = "man" if sex == "M" else "woman"
    items = [f"{age}-year-old {person}."]
    for key, p in _history_probabilities(findings).items():
        if rng.random() < p:
            items.append(HISTORY_ITEMS[key].format(p=int(rng.integers(10, 60))))
    if len(items) == 1:
        items.append("No significant past medical history.")
    return indication, " ".join(items)


def labs_for(
    rng: np.random.Generator, findings: dict[str, bool], age: int, sex: str, study_time: datetime
) -> list[dict[str, object]]:
    """Lab results as dicts (code, name, value, unit, reference_low, reference_high, observed_at).

    Values follow the findings (CRP/WBC/temperature up with consolidation, NT-proBNP up with
    cardiomegaly or effusion, haemoglobin down with a mass, SpO2 down with airspace or pleural
    disease); 12% of cases get an unrelated inflammatory or cardiac picture, and labs go missing.
    """
    infection = findings["consolidation"] or rng.random() < 0.12
    cardiac = findings["cardiomegaly"] or findings["effusion"] or rng.random() < 0.12
    hypoxic = findings["consolidation"] or findings["effusion"] or findings["pneumothorax"]
    values = {
        "crp": rng.lognormal(np.log(90 if infection else 2.5), 0.6 if infection else 0.8),
        "wbc": rng.normal(14.5, 3.5) if infection else rng.normal(7.2, 1.6),
        "ntprobnp": rng.lognormal(np.log(2200 if cardiac else 60 + 2 * age), 0.7),
        "hgb": rng.normal(11.2 if findings["mass"] else (14.6 if sex == "M" else 13.3), 1.2),
        "temp": rng.normal(38.4, 0.6) if infection else rng.normal(36.8, 0.3),
        "spo2": 100 - rng.gamma(2.0, 3.5 if hypoxic else 0.9),
        "rr": rng.normal(24, 4) if hypoxic else rng.normal(15, 2),
    }
    labs: list[dict[str, object]] = []
    for key, value in values.items():
        if rng.random() < LAB_MISSING[key]:
            continue
        code, name, unit, low, high = LAB_DEFINITIONS[key]
        observed = study_time - timedelta(minutes=int(rng.integers(10, 600)))
        labs.append(
            {
                "code": code,
                "name": name,
                "value": round(float(max(value, 0.1)), 1),
                "unit": unit,
                "reference_low": low,
                "reference_high": high,
                "observed_at": observed.replace(tzinfo=UTC).isoformat(),  # study clock = UTC
            }
        )
    return labs


def _location(cx: float, cy: float) -> tuple[str, str]:
    """(side, lobe) of a normalised point; image left is the patient's right."""
    side = "right" if cx < 0.5 else "left"
    if cy < 0.38:
        return side, f"{side} upper lobe"
    if cy < 0.52:
        return side, "right middle lobe" if side == "right" else "lingula"
    return side, f"{side} lower lobe"


def report_for(
    findings: dict[str, bool],
    lesions: dict[str, tuple[float, float, float, float]],
    mm_per_unit: float,
) -> dict[str, str]:
    """Ground-truth report {"findings", "impression"} in the style of chest radiograph reports.

    ``lesions`` maps each present finding to its normalised box (cx, cy, w, h); ``mm_per_unit`` is
    the image width in millimetres, used to state lesion sizes in centimetres.
    """
    sentences: list[str] = []
    impressions: list[str] = []
    if findings["cardiomegaly"]:
        sentences.append("The cardiac silhouette is enlarged.")
        impressions.append("Cardiomegaly.")
    else:
        sentences.append("The heart size is normal.")
    sentences.append("The mediastinal contours are within normal limits.")
    for name in ("nodule", "mass"):
        if findings[name]:
            cx, cy, w, h = lesions[name]
            _, lobe = _location(cx, cy)
            cm = max(w, h) * mm_per_unit / 10
            shape = "well-circumscribed nodule" if name == "nodule" else "lobulated mass"
            sentences.append(f"There is a {cm:.1f} cm {shape} in the {lobe}.")
            advice = "CT chest recommended." if name == "nodule" else "Further evaluation with CT."
            impressions.append(f"{cm:.1f} cm {name} in the {lobe}. {advice}")
    if findings["consolidation"]:
        _, lobe = _location(*lesions["consolidation"][:2])
        sentences.append(f"Patchy airspace consolidation in the {lobe} with air bronchograms.")
        impressions.append(f"Consolidation in the {lobe}, consistent with pneumonia.")
    elif not (findings["nodule"] or findings["mass"]):
        sentences.append("The lungs are clear without focal airspace opacity.")
    if findings["effusion"]:
        side, _ = _location(*lesions["effusion"][:2])
        grade = "small" if lesions["effusion"][3] < 0.1 else "moderate"
        sentences.append(
            f"Blunting of the {side} costophrenic angle with a meniscus: {grade} {side} pleural "
            "effusion."
        )
        impressions.append(f"{grade.capitalize()} {side} pleural effusion.")
    else:
        sentences.append("No pleural effusion.")
    if findings["pneumothorax"]:
        side, _ = _location(*lesions["pneumothorax"][:2])
        sentences.append(
            f"A visceral pleural line is seen at the {side} apex with absent lung markings "
            f"peripherally, consistent with a {side} pneumothorax."
        )
        impressions.append(f"{side.capitalize()} apical pneumothorax.")
    else:
        sentences.append("No pneumothorax.")
    sentences.append("The visualized osseous structures are unremarkable.")
    if not impressions:
        impressions.append("No acute cardiopulmonary abnormality.")
    if len(impressions) > 1:
        impressions = [f"{i}. {text}" for i, text in enumerate(impressions, 1)]
    return {"findings": " ".join(sentences), "impression": " ".join(impressions)}
