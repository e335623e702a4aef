"""Who sees a material: the access matrix for a tutor's shared material and for a student's own
file; sharing by name and with all of a tutor's students."""

from __future__ import annotations

import asyncpg

from services.material_service.tests.conftest import Api, assert_error, outbox, unique_bytes


async def _matrix(api: Api, material_id: str, people: dict[str, dict[str, str]]) -> dict[str, int]:
    answers = {}
    for who, headers in people.items():
        response = await api.client.get(f"/api/v1/materials/{material_id}/download", headers=headers)
        answers[who] = response.status_code
    return answers


async def test_a_shared_material_through_the_access_matrix(api: Api, db: asyncpg.Pool) -> None:
    family, other = api.family(), api.family()
    tutor_b = other.tutor
    content = unique_bytes()
    material = await api.uploaded(family.tutor, content)
    people = {
        "tutor_a": family.tutor.headers,
        "tutor_b": tutor_b.headers,
        "student": family.student.headers,
        "parent": family.parent.headers,
        "other_student": other.student.headers,
        "anonymous": {},
    }
    before = await _matrix(api, material["id"], people)
    assert before == {
        "tutor_a": 200,
        "tutor_b": 404,
        "student": 404,  # not shared yet
        "parent": 404,
        "other_student": 404,
        "anonymous": 401,
    }

    shared = await api.share(family.tutor, material["id"], student_ids=[family.student.id])
    assert shared.status_code == 200, shared.text
    assert shared.json()["shared_with"] == [family.student.id]
    after = await _matrix(api, material["id"], people)
    assert after == {**before, "student": 200, "parent": 200}

    downloaded = await api.download(family.student, material["id"])
    assert downloaded.content == content
    [event] = await outbox(db, "material.shared", material["id"])
    assert event["student_ids"] == [family.student.id] and event["all_students"] is False


async def test_only_the_owner_shares_and_only_with_their_students(api: Api, db: asyncpg.Pool) -> None:
    family, other = api.family(), api.family()
    material = await api.uploaded(family.tutor, unique_bytes())
    assert_error(await api.share(family.tutor, material["id"], student_ids=[other.student.id]), 404)
    assert_error(await api.share(other.tutor, material["id"], student_ids=[other.student.id]), 404)
    assert (await api.share(family.tutor, material["id"], student_ids=[family.student.id])).status_code == 200
    assert_error(await api.share(family.student, material["id"], student_ids=[family.student.id]), 403)
    assert_error(await api.share(family.tutor, material["id"]), 422)
    again = await api.share(family.tutor, material["id"], student_ids=[family.student.id])
    assert again.status_code == 200
    assert len(await outbox(db, "material.shared", material["id"])) == 1  # a repeated share says nothing


async def test_shared_with_all_of_the_tutors_students(api: Api, db: asyncpg.Pool) -> None:
    family, other = api.family(), api.family()
    second = api.person("student")
    api.users.link(family.tutor.id, second.id, "tutor")
    await api.announce(family.tutor, family.student, family.parent)  # the parent's children come from local links
    material = await api.uploaded(family.tutor, unique_bytes())
    response = await api.share(family.tutor, material["id"], all_students=True)
    assert response.status_code == 200 and response.json()["share_all"] is True
    for student in (family.student, second):
        assert (await api.download(student, material["id"])).status_code == 200
    assert (await api.download(family.parent, material["id"])).status_code == 200
    assert_error(await api.download(other.student, material["id"]), 404)
    [event] = await outbox(db, "material.shared", material["id"])
    assert event["all_students"] is True


async def test_a_students_file_is_seen_by_them_and_their_tutor_only(api: Api) -> None:
    family, other = api.family(), api.family()
    material = await api.uploaded(family.student, unique_bytes(), title="My homework")
    assert material["owner_role"] == "student"
    answers = {
        who: (await api.download(person, material["id"])).status_code
        for who, person in {
            "student": family.student,
            "tutor": family.tutor,
            "parent": family.parent,
            "other_tutor": other.tutor,
            "other_student": other.student,
        }.items()
    }
    assert answers == {"student": 200, "tutor": 200, "parent": 404, "other_tutor": 404, "other_student": 404}
