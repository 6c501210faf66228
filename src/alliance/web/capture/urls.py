"""Studies, participants, timelines, forms, private links and exports (owned by the capture app).

Every pattern is listed with the roles allowed in ``/tmp/web_urls_W1.md``. The ``study`` keyword
is ``Study.name``; ``participant`` is ``Participant.participant_id``; ``timepoint`` the protocol's
timepoint id; ``instrument`` the instrument id.
"""

from __future__ import annotations

from django.urls import path

from alliance.web.accounts.access import study_view
from alliance.web.audit import views as audit_views

from . import safety_views, views, visit_views

app_name = "capture"
urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<str:study>/", views.study_detail, name="study_detail"),
    path("studies/<str:study>/import/", views.study_import, name="study_import"),
    path("studies/<str:study>/participants/new/", views.participant_enrol, name="participant_enrol"),
    path("studies/<str:study>/participants/<str:participant>/", views.participant_detail,
         name="participant_detail"),
    path("studies/<str:study>/participants/<str:participant>/edit/", views.participant_edit,
         name="participant_edit"),
    path("studies/<str:study>/participants/<str:participant>/dosing/", views.dosing_record, name="dosing_record"),
    path("studies/<str:study>/participants/<str:participant>/links/new/", views.link_create, name="link_create"),
    path("studies/<str:study>/participants/<str:participant>/forms/<str:timepoint>/<str:instrument>/",
         views.staff_form, name="staff_form"),
    path("studies/<str:study>/participants/<str:participant>/visits/<str:timepoint>/link/",
         visit_views.visit_link_create, name="visit_link_create"),
    path("studies/<str:study>/participants/<str:participant>/emails/", visit_views.email_preference,
         name="email_preference"),
    path("studies/<str:study>/safety/", safety_views.study_safety, name="study_safety"),
    path("studies/<str:study>/randomisation/", safety_views.randomisation, name="randomisation"),
    path("studies/<str:study>/participants/<str:participant>/safety/", safety_views.participant_safety,
         name="participant_safety"),
    path("studies/<str:study>/participants/<str:participant>/adverse-events/new/", safety_views.adverse_event_form,
         name="adverse_event_new"),
    path("studies/<str:study>/participants/<str:participant>/adverse-events/<str:ae_id>/",
         safety_views.adverse_event_form, name="adverse_event_edit"),
    path("studies/<str:study>/participants/<str:participant>/vital-signs/new/", safety_views.vital_sign_form,
         name="vital_sign_new"),
    path("studies/<str:study>/participants/<str:participant>/medications/new/", safety_views.medication_form,
         name="medication_new"),
    path("studies/<str:study>/participants/<str:participant>/medications/<int:pk>/", safety_views.medication_form,
         name="medication_edit"),
    path("studies/<str:study>/links/", visit_views.link_list, name="links"),
    path("studies/<str:study>/links/<str:kind>/<int:pk>/revoke/", visit_views.link_revoke, name="link_revoke"),
    path("studies/<str:study>/links/<str:kind>/<int:pk>/resend/", visit_views.link_resend, name="link_resend"),
    path("studies/<str:study>/exports/", views.exports, name="exports"),
    path("studies/<str:study>/exports/<str:kind>/", views.export_download, name="export_download"),
    # The audit page is the audit app's; who may see it is decided here, where access is (audit imports no app).
    path("studies/<str:study>/audit/", study_view(roles=audit_views.ROLES)(audit_views.audit_trail),
         name="audit_trail"),
    path("f/<str:token>/", views.private_form, name="private_form"),
    path("v/<str:token>/", visit_views.visit, name="visit"),
    path("v/<str:token>/<str:instrument>/", visit_views.visit_form, name="visit_form"),
    path("o/<str:token>/", visit_views.opt_out, name="opt_out"),
]
