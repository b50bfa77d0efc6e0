"""Find scans under a source folder: NIfTI files (with their masks) and DICOM series, grouped by patient.

Rules (documented in the README, "Preparing data"):

- Hidden files and folders (``.name``) and side files (``.json``, ``.txt``, ``.cfg``, ``.csv``, ...) are
  ignored. ``include``/``exclude`` globs are matched against the path relative to the source.
- A NIfTI file whose name matches ``mask_pattern`` (default ``*_gt.nii*``) is a segmentation mask; the
  masks of a scan are the mask files in the scan's folder (their union is the ROI, so ACDC-style
  per-frame masks of one patient all count).
- Every other file is a DICOM candidate; each folder's candidates are grouped into series by
  :func:`mrisr.io.dicom.scanning.find_series`: one scan per (folder, SeriesInstanceUID). Files no series
  claims are reported as unreadable.
- Patient: ``group_by="dicom"`` uses the DICOM PatientID; ``"folder"`` the first folder under the
  source (a file lying directly in the source is its own patient); ``"regex"`` the ``patient`` group
  (else group 1, else the whole match) of ``patient_regex`` searched in the relative path; ``"auto"``
  uses PatientID for DICOM when present and the folder otherwise, except that a scan named by its folder
  takes the PatientID of the DICOM series in the same top-level folder when they carry exactly one.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from mrisr.errors import ConfigError

SIDE_FILE_SUFFIXES = (
    ".json", ".txt", ".cfg", ".csv", ".tsv", ".md", ".yaml", ".yml", ".xml", ".log", ".html", ".pdf",
    ".png", ".jpg", ".jpeg", ".npy", ".npz", ".zip", ".tar", ".gz", ".py", ".sh", ".ini",
)
GROUP_BY = ("auto", "dicom", "folder", "regex")


@dataclass(frozen=True)
class ScanRef:
    """One scan found under the source.

    Attributes:
        volume_id: unique, file-name-safe id derived from the relative path (and series UID).
        kind: ``"nifti"`` or ``"dicom"``.
        path: the NIfTI file, or the folder holding the DICOM series.
        rel: ``path`` relative to the source, POSIX style (what reports show).
        patient: patient key used for splitting.
        series_uid: SeriesInstanceUID for DICOM.
        files: the files making up the scan (fingerprinted for resume).
        masks: mask files that go with the scan.
        modality: from the DICOM header when known (checked before reading pixels).
    """

    volume_id: str
    kind: str
    path: Path
    rel: str
    patient: str
    series_uid: str | None = None
    files: tuple[Path, ...] = ()
    masks: tuple[Path, ...] = ()
    modality: str | None = None


@dataclass
class Skipped:
    """An input that was not prepared, and why (for the summary)."""

    source: str
    reason: str


@dataclass
class Discovery:
    """Scans found, inputs skipped, and which patient keys are DICOM PatientIDs (identifying data: see
    :func:`pseudonymise_patients`)."""

    scans: list[ScanRef] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    patient_ids: set[str] = field(default_factory=set)


#: Prefix of the pseudonyms that replace DICOM PatientIDs in prepared data (``pseudo-001``, ...).
PSEUDONYM_PREFIX = "pseudo-"


def pseudonymise_patients(found: Discovery) -> Discovery:
    """``found`` with every patient key that is a DICOM PatientID replaced by a pseudonym.

    The pseudonyms are ``pseudo-001``, ``pseudo-002``, ... in the sorted order of the PatientIDs, so the
    grouping (one pseudonym per patient) and the splits (patients are sorted before they are dealt) stay
    what they were with the real IDs; nothing maps them back (that table is never written). Keys that are
    not PatientIDs (folder names, regex matches) are left alone; a pseudonym never equals one of them.
    """
    ids = sorted(found.patient_ids)
    others = {s.patient for s in found.scans} - found.patient_ids
    width = max(3, len(str(len(ids))))
    names: dict[str, str] = {}
    for i, pid in enumerate(ids, start=1):
        name = f"{PSEUDONYM_PREFIX}{i:0{width}d}"
        while name in others:
            name += "x"
        names[pid] = name
    scans = [replace(s, patient=names.get(s.patient, s.patient)) for s in found.scans]
    return Discovery(scans, list(found.skipped), set())


def is_nifti(name: str) -> bool:
    low = name.lower()
    return low.endswith((".nii", ".nii.gz"))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "scan"


def _nifti_stem(name: str) -> str:
    return re.sub(r"\.nii(\.gz)?$", "", name, flags=re.IGNORECASE)


def fingerprint(files: Sequence[Path]) -> str:
    """Cheap change detector for resume: names, sizes and modification times of the files (scan + masks)."""
    h = hashlib.sha1()
    for f in sorted(files):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


class _Patients:
    def __init__(self, group_by: str, patient_regex: str | None) -> None:
        if patient_regex:
            group_by = "regex"
        if group_by not in GROUP_BY:
            raise ConfigError(f"group_by: expected one of {', '.join(GROUP_BY)}, got {group_by!r}")
        if group_by == "regex" and not patient_regex:
            raise ConfigError("group_by 'regex' needs patient_regex")
        self.group_by = group_by
        try:
            self.regex = re.compile(patient_regex) if patient_regex else None
        except re.error as exc:
            raise ConfigError(f"patient_regex: {exc}") from None

    def __call__(self, rel: str, dicom: bool, dicom_patient: str | None = None) -> str | None:
        if self.regex is not None:
            m = self.regex.search(rel)
            if m is None:
                return None
            if "patient" in m.groupdict():
                return m.group("patient")
            return m.group(1) if m.groups() else m.group(0)
        if self.group_by in ("dicom", "auto") and dicom_patient:
            return dicom_patient
        if self.group_by == "dicom" and dicom:
            return None  # no PatientID
        parts = rel.split("/")
        return parts[0] if len(parts) > 1 else _nifti_stem(parts[0])


def _dicom_header(path: Path) -> tuple[str | None, str | None]:
    """(PatientID, Modality) from one file's header, without pixel data."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID", "Modality"])
    except Exception:
        return None, None
    pid = str(getattr(ds, "PatientID", "") or "").strip() or None
    modality = str(getattr(ds, "Modality", "") or "").strip() or None
    return pid, modality


def discover(
    source: str | Path,
    mask_pattern: str | None = "*_gt.nii*",
    group_by: str = "auto",
    patient_regex: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Discovery:
    """Walk ``source`` recursively and return the scans found (sorted by relative path) and what was skipped."""
    root = Path(source)
    patients = _Patients(group_by, patient_regex)
    found = Discovery()
    used_ids: set[str] = set()

    def unique_id(base: str) -> str:
        vid, n = base, 1
        while vid in used_ids:
            n += 1
            vid = f"{base}-{n}"
        used_ids.add(vid)
        return vid

    def wanted(rel: str) -> bool:
        if include and not any(fnmatch.fnmatch(rel, g) for g in include):
            return False
        return not any(fnmatch.fnmatch(rel, g) for g in exclude)

    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        niftis, masks, dicoms = [], [], []
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            rel = (here / name).relative_to(root).as_posix()
            if is_nifti(name):
                if mask_pattern and fnmatch.fnmatch(name, mask_pattern):
                    masks.append(here / name)
                elif wanted(rel):
                    niftis.append(here / name)
            elif not name.lower().endswith(SIDE_FILE_SUFFIXES) and wanted(rel):
                dicoms.append(here / name)
        for path in niftis:
            rel = path.relative_to(root).as_posix()
            patient = patients(rel, False)
            if patient is None:
                found.skipped.append(Skipped(rel, "path does not match patient_regex"))
                continue
            found.scans.append(
                ScanRef(unique_id(_slug(_nifti_stem(rel).replace("/", "__"))), "nifti", path, rel, patient,
                        files=(path,), masks=tuple(masks))
            )
        if dicoms:
            _dicom_folder(root, here, dicoms, masks, patients, unique_id, found)
    if patients.group_by == "auto":
        found.scans = _adopt_folder_patient_ids(root, found.scans)
    found.scans.sort(key=lambda s: s.rel)
    return found


def _adopt_folder_patient_ids(root: Path, scans: list[ScanRef]) -> list[ScanRef]:
    """``auto`` grouping: scans named by their folder (NIfTI, DICOM without PatientID) take the PatientID of
    the DICOM series in the same top-level folder when those carry exactly one, so a NIfTI copy next to
    its DICOM series cannot land in another split (a leak). Folders holding several PatientIDs (a DICOM
    dump of many patients) are left alone."""
    def folder(scan: ScanRef) -> str | None:
        parts = scan.path.relative_to(root).parts
        return parts[0] if len(parts) > 1 or (scan.kind == "dicom" and parts) else None

    ids: dict[str, set[str]] = {}
    for scan in scans:
        key = folder(scan)
        if key is not None and scan.patient != key:  # named by its PatientID
            ids.setdefault(key, set()).add(scan.patient)
    out = []
    for scan in scans:
        key = folder(scan)
        named = ids.get(key or "", set())
        if key is not None and scan.patient == key and len(named) == 1:
            scan = replace(scan, patient=next(iter(named)))
        out.append(scan)
    return out


def _dicom_folder(
    root: Path,
    here: Path,
    candidates: list[Path],
    masks: list[Path],
    patients: _Patients,
    unique_id: Callable[[str], str],
    found: Discovery,
) -> None:
    from mrisr.io.dicom.scanning import find_series

    rel_dir = here.relative_to(root).as_posix()
    try:
        series = find_series(here)
    except Exception as exc:
        series = {}
        reason = str(exc)
    else:
        reason = "not a readable DICOM image"
    # find_series looks into sub-folders too; those are scanned as folders of their own.
    here_series = {uid: sorted(Path(f) for f in fs if Path(f).parent == here) for uid, fs in series.items()}
    here_series = {uid: fs for uid, fs in here_series.items() if fs}
    claimed: set[Path] = set()
    for uid, files in sorted(here_series.items()):
        claimed.update(f.resolve() for f in files)
        pid, modality = _dicom_header(files[0])
        label = f"{rel_dir}/" + (f" (series {uid})" if len(here_series) > 1 else "")
        patient = patients(rel_dir if rel_dir != "." else files[0].name, True, pid)
        if patient is None:
            found.skipped.append(Skipped(label, "no patient (PatientID missing or path does not match patient_regex)"))
            continue
        if patient == pid:
            found.patient_ids.add(patient)
        short = hashlib.sha1(str(uid).encode()).hexdigest()[:6]
        base = _slug(rel_dir.replace("/", "__")) if rel_dir != "." else "dicom"
        found.scans.append(
            ScanRef(unique_id(f"{base}-{short}"), "dicom", here, label, patient, str(uid),
                    tuple(files), tuple(masks), modality)
        )
    for f in candidates:
        if f.resolve() not in claimed:
            found.skipped.append(Skipped(f.relative_to(root).as_posix(), reason))
