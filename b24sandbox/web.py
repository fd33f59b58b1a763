"""The portal's web pages: they host the app in an iframe the way Bitrix24 does."""

from flask import Blueprint

bp = Blueprint("portal_web", __name__)
