"""Record the sha256 of the pixel model's shipped files in src/videmo/models/__init__.py
(run after scripts/ship_pixel_model.py or scripts/calibrate_framing.py)."""

import re

from videmo.models import MODEL_DIR, sha256_of

INIT = MODEL_DIR / "__init__.py"
NAMES = {"PIXEL_MODEL": "pixels.tflite", "PIXEL_MODEL_CARD": "pixels.json",
         "FACE_FRAMING": "face_framing.json", "EYE_CASCADE": "haarcascade_eye.xml"}
text = INIT.read_text()
for const, fname in NAMES.items():
    digest = sha256_of(MODEL_DIR / fname)
    line = f'    {const}: "{digest}",\n'
    if re.search(rf"^    {const}: ", text, re.M):
        text = re.sub(rf'^    {const}: "[0-9a-f]+",\n', line, text, flags=re.M)
    else:
        end = "\n}\n\n\nclass ModelFileError"
        text = text.replace(end, "\n" + line.rstrip("\n") + end, 1)
INIT.write_text(text)
print("updated", INIT)
