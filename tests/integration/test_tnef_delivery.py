"""A winmail.dat from Outlook, through the relay ingress and the worker: the files inside
are delivered and downloadable beside the original part, and its body is the message's."""

from email.message import EmailMessage

from sqlalchemy import select

from extensions import db
from models import Attachment, InboxMember
from tests.fixtures.mail.tnef.build import tnef
from tests.support.inbound import deliver

PDF = b"%PDF-1.4 quarterly figures"
SHEET = bytes(range(256)) * 4


def test_the_files_and_body_inside_a_winmail_dat_are_delivered(app, client, inbox, auth, make_user):
    winmail = tnef(
        [("Quarterly report.pdf", PDF, b"QUARTE~1.PDF\x00"), ("figures.xlsx", SHEET)],
        body="Hello,\r\nthe figures are attached.\r\nKim",
    )
    email = EmailMessage()  # no text part: Outlook put the body in the winmail.dat
    email["From"], email["To"] = "Kim <kim@customer.example>", "support@example.com"
    email["Subject"], email["Message-ID"] = "Figures", "<winmail@customer.example>"
    email.add_attachment(winmail, maintype="application", subtype="ms-tnef", filename="winmail.dat")

    message = deliver(app, client, email.as_bytes())

    assert message.text_body == "Hello,\nthe figures are attached.\nKim"
    rows = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(row.filename, row.content_type, row.size) for row in rows] == [
        ("winmail.dat", "application/ms-tnef", len(winmail)),
        ("Quarterly report.pdf", "application/pdf", len(PDF)),
        ("figures.xlsx", "application/octet-stream", len(SHEET)),  # not in the stdlib table
    ]
    agent = make_user()
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=agent.id))
    db.session.commit()
    auth.login(agent.email, agent.plain_password)
    for row, data in zip(rows, (winmail, PDF, SHEET), strict=True):
        response = client.get(f"/attachments/{row.id}")
        assert response.status_code == 200 and response.data == data
