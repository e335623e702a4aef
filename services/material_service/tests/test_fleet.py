"""material-service in the test fleet, through the gateway: real user-service accounts and links,
a multipart upload streamed through the gateway, sharing, the access matrix on the download,
the bytes back exactly, material.viewed once on the fleet's exchange, and the size limit."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from shared.testing.accounts import cast, register
from shared.testing.events import EventRecorder
from shared.testing.fleet import TestFleet

MB = 1024 * 1024


async def test_upload_share_and_download_through_the_gateway(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway, EventRecorder(fleet.rabbit_url) as events:
        people = (await cast(gateway)).matrix()
        tutor = people["tutor_a"]
        content = b"%PDF-1.7\n" + uuid.uuid4().bytes * 40_000 + b"\n%%EOF\n"  # ~640 KB, several chunks
        uploaded = await gateway.post(
            "/api/v1/materials",
            data={"title": "Quadratic equations", "subject": "maths", "grade": "8", "tags": "algebra"},
            files={"file": ("Квадратные уравнения.pdf", content, "application/pdf")},
            headers=tutor.headers,
        )
        assert uploaded.status_code == 201, uploaded.text
        material = uploaded.json()
        assert material["sha256"] == hashlib.sha256(content).hexdigest() and material["size"] == len(content)
        shared = await gateway.post(
            f"/api/v1/materials/{material['id']}/share",
            json={"student_ids": [people["student"].id]},
            headers=tutor.headers,
        )
        assert shared.status_code == 200, shared.text

        answers = {}
        for who, person in people.items():
            response = await gateway.get(f"/api/v1/materials/{material['id']}/download", headers=person.headers)
            answers[who] = response.status_code
            if response.status_code == 200:
                assert response.content == content, who
        assert answers == {
            "tutor_a": 200,
            "tutor_b": 404,
            "student": 200,
            "parent": 200,
            "student_b": 404,
            "anonymous": 401,
        }
        partial = await gateway.get(
            f"/api/v1/materials/{material['id']}/download",
            headers={**people["student"].headers, "Range": "bytes=0-8"},
        )
        assert partial.status_code == 206 and partial.content == b"%PDF-1.7\n"

        def this_material(envelope: Any) -> bool:
            return envelope.payload["material_id"] == material["id"]

        viewed = await events.wait_for("material.viewed", this_material, timeout=20)
        assert viewed.payload["viewer_id"] == people["student"].id and viewed.producer == "material-service"
        await events.assert_none(
            "material.viewed", lambda e: this_material(e) and e.event_id != viewed.event_id, within=1
        )
        assert (await events.wait_for("material.uploaded", this_material, timeout=20)).payload["size"] == len(content)
        assert (await events.wait_for("material.shared", this_material, timeout=20)).payload["student_ids"] == [
            people["student"].id
        ]

        listed = await gateway.get("/api/v1/materials", params={"tag": "algebra"}, headers=people["student"].headers)
        assert [item["id"] for item in listed.json()["items"]] == [material["id"]]


async def test_a_file_above_50_mb_is_refused_with_413(fleet: TestFleet) -> None:
    async with fleet.client("api-gateway") as gateway:
        tutor = await register(gateway, "tutor big")
        too_big = b"%PDF-1.7\n" + bytes(50 * MB)
        response = await gateway.post(
            "/api/v1/materials",
            data={"title": "Too big"},
            files={"file": ("big.pdf", too_big, "application/pdf")},
            headers=tutor.headers,
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "payload_too_large"
