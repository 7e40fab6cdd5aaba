#!/usr/bin/env bash
# Regenerate the client's models from the server (run from the repository root, in the server's
# venv, with datamodel-code-generator installed: pip install 'datamodel-code-generator>=0.89').
# tests/unit/test_client_contract.py fails until the models match the server again.
set -euo pipefail
out=clients/python/src/ordinaut_client
tmp=$(mktemp -d)
python - "$tmp" <<'PY'
import json, sys
import msgspec
from domain.events import EVENT_TYPES
from services.api.app import ApiConfig, create_app

config = ApiConfig("postgresql://unused@127.0.0.1/unused", "redis://127.0.0.1", b"unused")
with open(f"{sys.argv[1]}/openapi.json", "w") as f:
    json.dump(create_app(config).openapi_schema.to_schema(), f)
_, events = msgspec.json.schema_components(list(EVENT_TYPES.values()), ref_template="#/$defs/{name}")
with open(f"{sys.argv[1]}/events.json", "w") as f:
    json.dump({"title": "Events", "$defs": events}, f)
PY
options=(--output-model-type pydantic_v2.BaseModel --target-python-version 3.11 --use-annotated
         --use-union-operator --use-standard-collections --enum-field-as-literal all
         --use-schema-description --field-constraints --disable-timestamp --use-double-quotes
         --collapse-root-models --formatters ruff-format)
for name in openapi events; do
    python clients/python/scripts/fold_nullable.py "$tmp/$name.json" "$tmp/$name.folded.json"
done
datamodel-codegen --input "$tmp/openapi.folded.json" --input-file-type openapi \
    --output "$out/models.py" "${options[@]}"
datamodel-codegen --input "$tmp/events.folded.json" --input-file-type jsonschema \
    --output "$out/_event_models.py" "${options[@]}"
ruff format "$out/models.py" "$out/_event_models.py"
ruff check --fix "$out/models.py" "$out/_event_models.py"
python clients/python/scripts/unasync.py
