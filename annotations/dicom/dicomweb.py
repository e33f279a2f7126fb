"""A small DICOMweb client for pulling studies from a PACS: QIDO-RS to find studies and their
instances, WADO-RS to retrieve each instance as a DICOM Part 10 byte stream held in memory.

Every network or protocol failure becomes ``PacsUnavailable``, a domain error naming the URL
and the HTTP status, so callers (service, command, API) report it the same way.

The URL is chosen by a project's lead, and the server makes the requests: without care it could
reach what only the server can (a cloud metadata service on a link-local address, an admin
port on loopback) and report back whether a port answered and with which status. So a target
whose host resolves to a loopback, link-local, unspecified or multicast address is refused
unless it lies in ``allowed_networks`` (MEDLOOP_PACS_ALLOWED_NETWORKS), and a redirect to
another scheme, host or port is not followed."""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from annotations.dicom.completeness import incomplete_reason
from annotations.services.errors import DomainError, InvalidInput

# Study-level QIDO-RS matching keys a pull may use (PS3.18 table 10.6.1-5, the common ones).
STUDY_QUERY_KEYS = frozenset(
    {
        "PatientID",
        "PatientName",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",
        "ReferringPhysicianName",
    }
)

# Ask for instances as stored (any transfer syntax): no transcoding by the PACS, so the pixels
# ingested are the ones the modality produced.
_AS_STORED = (("application/dicom", "*"),)

_STUDY_UID = "0020000D"
_SERIES_UID = "0020000E"
_SOP_UID = "00080018"
_SOP_CLASS_UID = "00080016"


class PacsUnavailable(DomainError):
    """The PACS could not be reached or answered with an error (HTTP 502 to API callers)."""

    status_code = 502
    code = "pacs_unavailable"


class PacsTargetRefused(DomainError):
    """The DICOMweb URL points somewhere the server must not send requests (HTTP 400)."""

    status_code = 400
    code = "pacs_target_refused"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
    )


def check_target(url: str, allowed_networks: Sequence[str] = ()) -> None:
    """Refuse (PacsTargetRefused) a DICOMweb URL that is not http(s), or whose host resolves to
    a loopback, link-local, unspecified or multicast address outside ``allowed_networks``
    (e.g. ``["127.0.0.0/8", "::1/128"]`` for a PACS on the same machine). A host that does not
    resolve is PacsUnavailable, like one that does not answer."""
    scheme, host, port = _origin(url)
    if scheme not in ("http", "https") or not host:
        raise PacsTargetRefused(f"{url} is not an http(s) URL with a host.", url=url)
    allowed = [ipaddress.ip_network(n.strip(), strict=False) for n in allowed_networks if n]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise PacsUnavailable(
            f"PACS at {url}: the host name does not resolve.", url=url, http_status=None
        ) from exc
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if _internal(address) and not any(address in network for network in allowed):
            raise PacsTargetRefused(
                f"{url} points to a loopback or link-local address; a PACS there must be "
                "allowed in MEDLOOP_PACS_ALLOWED_NETWORKS.",
                url=url,
            )


@dataclass(frozen=True)
class RemoteInstance:
    """One instance as the PACS lists it (original UIDs: never stored by MedLoop)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str


def _first_value(attributes: Mapping[str, Any], tag: str) -> str:
    values = (attributes.get(tag) or {}).get("Value") or [""]
    return str(values[0])


class PacsClient:
    """QIDO-RS / WADO-RS against one DICOMweb root, e.g. ``http://pacs:8042/dicom-web``."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        attempts: int = 3,
        allowed_networks: Sequence[str] = (),
    ) -> None:
        if not url:
            raise PacsUnavailable("No DICOMweb URL is configured for this project.")
        self.url = url.rstrip("/")
        check_target(self.url, allowed_networks)
        session = requests.Session()
        # Not through a proxy named in the environment: the check above is about this host.
        session.trust_env = False
        session.hooks["response"].append(self._refuse_cross_origin_redirect)
        try:
            self._client = DICOMwebClient(url=self.url, timeout=timeout, session=session)
        except (ValueError, TypeError) as exc:
            raise PacsUnavailable(f"{self.url} is not a usable DICOMweb URL ({exc}).") from exc
        # The library retries every failure, refused connections included, 5 times with
        # backoff (about 30 s); 3 attempts 1 s and 2 s apart ride out a restart or a 503.
        self._client.set_http_retry_params(max_attempts=attempts, wait_exponential_multiplier=500)

    def _refuse_cross_origin_redirect(
        self, response: requests.Response, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """A response hook: requests runs it on each response before following a redirect."""
        if response.is_redirect:
            target = urljoin(response.url, response.headers.get("location", ""))
            if _origin(target) != _origin(self.url):
                raise PacsTargetRefused(
                    f"PACS at {self.url} redirected to another host, scheme or port; "
                    "such redirects are not followed.",
                    url=self.url,
                )
        return response

    def _fail(self, what: str, exc: Exception) -> PacsUnavailable:
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            status = exc.response.status_code
            reason = exc.response.reason or ""
            return PacsUnavailable(
                f"PACS at {self.url}: {what} failed with HTTP {status} {reason}".rstrip() + ".",
                url=self.url,
                http_status=status,
            )
        if isinstance(exc, requests.RequestException):
            return PacsUnavailable(
                f"PACS at {self.url}: {what} failed, the server could not be reached "
                f"({type(exc).__name__}).",
                url=self.url,
                http_status=None,
            )
        return PacsUnavailable(
            f"PACS at {self.url}: {what} gave an answer that is not valid DICOMweb ({exc}).",
            url=self.url,
            http_status=None,
        )

    def find_studies(self, query: Mapping[str, str], *, limit: int) -> list[str]:
        """Study Instance UIDs matching ``query`` (QIDO-RS keys, see STUDY_QUERY_KEYS)."""
        unknown = sorted(set(query) - STUDY_QUERY_KEYS)
        if unknown:
            raise InvalidInput(f"Unsupported query keys {unknown}; use {sorted(STUDY_QUERY_KEYS)}.")
        try:
            studies = self._client.search_for_studies(
                search_filters=dict(query), limit=limit, fields=["StudyInstanceUID"]
            )
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise self._fail("study search (QIDO-RS)", exc) from exc
        uids = [_first_value(study, _STUDY_UID) for study in studies]
        return list(dict.fromkeys(uid for uid in uids if uid))[:limit]

    def list_instances(self, study_instance_uid: str) -> list[RemoteInstance]:
        """Every instance of one study (QIDO-RS), in series then instance order as listed."""
        try:
            found = self._client.search_for_instances(
                study_instance_uid=study_instance_uid,
                fields=["SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"],
                get_remaining=True,
            )
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise self._fail("instance search (QIDO-RS)", exc) from exc
        instances = [
            RemoteInstance(
                study_instance_uid=study_instance_uid,
                series_instance_uid=_first_value(item, _SERIES_UID),
                sop_instance_uid=_first_value(item, _SOP_UID),
                sop_class_uid=_first_value(item, _SOP_CLASS_UID),
            )
            for item in found
        ]
        return [i for i in instances if i.series_instance_uid and i.sop_instance_uid]

    def retrieve_part10(self, instance: RemoteInstance) -> bytes:
        """One instance (WADO-RS) as a DICOM Part 10 byte stream, never written to disk.

        Raises PacsUnavailable when the PACS cannot be reached or answers with an error, and
        InvalidInput when its answer is not readable DICOM (a malformed instance: the pull
        refuses that one and goes on)."""
        try:
            dataset = self._client.retrieve_instance(
                study_instance_uid=instance.study_instance_uid,
                series_instance_uid=instance.series_instance_uid,
                sop_instance_uid=instance.sop_instance_uid,
                media_types=_AS_STORED,
            )
        except requests.RequestException as exc:
            raise self._fail("instance retrieval (WADO-RS)", exc) from exc
        except DomainError:
            raise  # a refused redirect
        except Exception as exc:  # pydicom's parse of the part fails in many ways on bad data
            raise self._unreadable(exc) from exc
        # Re-encoding would pad a short value back to its declared length: check first.
        incomplete = incomplete_reason(dataset)
        if incomplete:
            raise InvalidInput(
                f"PACS at {self.url}: the instance retrieved (WADO-RS) is {incomplete}."
            )
        try:
            return to_part10(dataset)
        except Exception as exc:  # parsed, but pydicom cannot encode what it read
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: Exception) -> InvalidInput:
        return InvalidInput(
            f"PACS at {self.url}: the instance retrieved (WADO-RS) is not readable DICOM "
            f"({type(exc).__name__}: {exc})."
        )


def to_part10(dataset: Dataset) -> bytes:
    """Encode a dataset parsed from a WADO-RS part (with its file meta) as Part 10 bytes."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()
