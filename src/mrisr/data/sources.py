"""Real MRI that installs offline: where each source lies, what it is, and whether it may be trained on.

Every source is declared once in :data:`CATALOGUE` (name, package, file, anatomy, species, contrast,
voxel size in mm, provenance, role); :func:`find_sources` returns the entries whose files are installed
on this machine. Sources come from four packages:

- ``nilearn`` (PyPI): the MNI152 2009 symmetric T1 template with its grey- and white-matter probability
  maps (an average of 152 adults, 1 mm), under ``nilearn/datasets/data/``.
- ``mricron-data`` (Debian, ``scripts/data/install_sources.sh``): under ``/usr/share/mricron/templates/``
  the Colin27 T1 (one adult scanned 27 times) at 1 mm (``ch2``), skull-stripped (``ch2bet``) and at 0.5 mm
  (``ch2better``); the INIA19 macaque T1 (0.5 mm); label atlases (AAL, Harvard-Oxford, JHU white matter,
  Brodmann, AICHA, JHU-189, NatBrainLab, INIA19 NeuroMaps).
- ``nibabel`` (PyPI): its test data ``anatomical.nii`` (a T1 brain at 2 mm) and ``example4d.nii.gz``
  (two frames of a T2*-weighted EPI brain series, 2 x 2 x 2.2 mm).
- ``pydicom`` (PyPI): its own test files ``MR_small.dcm`` (a 64 x 64 T1 slice, 0.31 mm) and
  ``examples_overlay.dcm`` (an abdominal MR slice, 300 x 484, 0.72 mm).
- ``insighttoolkit5-examples`` (Debian, ``scripts/data/install_sources.sh``): ITK's example data under
  ``/usr/share/doc/insighttoolkit5-examples/examples/Data/``: a real T1 head volume
  (``KmeansTest_T1UCharRaw.nii.gz``, 128 x 128 x 62 at 2 x 2 x 3 mm, with its scanner's noise), a
  mid-sagittal T1 slice, an abdominal fat-weighted slice (``FatMRISlice.png``) and BrainWeb's simulated
  proton-density slice (PNG files carry no voxel size; mrisr reads them as 1 mm).

Roles. ``train`` sources may be trained and tuned on; ``heldout`` sources are reserved by mrisr for
held-out evaluation and never enter a training set. The split is by *subject*, not by file, because two
files of one subject share their anatomy and a network tested on a subject it trained on is not tested
on new anatomy:

- Colin27 is held out as a whole (``ch2``, ``ch2bet`` and ``ch2better`` are one person, the 0.5 mm
  volume a re-acquisition of the same head): it is the one real individual adult brain at 1 mm and
  0.5 mm, so it is the fairest brain test. The label atlases drawn on Colin27 (AAL, Brodmann) are held
  out with it: synthetic images from them would carry its anatomy into training.
  BrainWeb's simulated PD slice (ITK) is built from Colin27's anatomy, so it is held out with it.
- The anatomies absent from training are held out too: both abdominal slices (``examples_overlay.dcm``,
  ITK's ``FatMRISlice.png``: two people, so the abdomen is scored on more than one case) and the two
  small real scans with their own scanners' noise and resolution (``MR_small.dcm``, nibabel's
  ``anatomical.nii``).
- Training keeps the MNI152 average (T1 and its tissue maps), the INIA19 macaque (another species and
  size), nibabel's EPI series (another contrast and resolution), ITK's real T1 head volume and
  mid-sagittal slice (single acquisitions with real noise) and the atlases drawn on MNI152, JHU Eve
  and INIA19, which feed :mod:`mrisr.data.synth` (random contrasts from label maps).

Reserved data. ``pydicom-data`` (the ``pydicom_data`` package, and ``~/.pydicom`` where pydicom
downloads its files) and ``dipy`` (its package and its data home ``~/.dipy`` or ``$DIPY_HOME``) are
reserved for *independent* evaluation of mrisr's models: :func:`check_not_reserved` refuses any path
inside them with :class:`ReservedDataError`, and every function here that returns a path calls it.
Nothing here imports those packages.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from mrisr.errors import MrisrError

Role = Literal["train", "heldout"]
Kind = Literal["image", "labels", "tissue_map"]
ROLES: tuple[Role, ...] = ("train", "heldout")

#: packages whose files are reserved for independent evaluation (import name -> what to call it)
RESERVED_PACKAGES: dict[str, str] = {"pydicom_data": "pydicom-data", "dipy": "dipy"}


class ReservedDataError(MrisrError):
    """A path lies inside data reserved for independent evaluation (pydicom-data, dipy)."""


@dataclass(frozen=True)
class Source:
    """One real MRI file that installs offline, and what it is.

    Attributes:
        name: unique, file-name-safe id (``mni152_t1``, ``colin27_1mm``, ...).
        package: what installs it (``nilearn``, ``mricron-data``, ``nibabel``, ``pydicom``,
            ``insighttoolkit5-examples``).
        root: which installed folder ``relpath`` is relative to (a key of :func:`package_roots`).
        relpath: the file inside that folder.
        kind: ``image`` (an MR image), ``labels`` (an integer label atlas) or ``tissue_map`` (a tissue
            probability map in [0, 1], stored scaled).
        anatomy: ``brain``, ``head``, ``abdomen``, ...
        species: ``human`` or ``macaque``.
        contrast: ``T1``, ``T2*-EPI``, ``labels``, ``GM probability``, ...
        voxel_mm: voxel size along the array axes in mm, as the header states (checked by the tests).
        subject: who was scanned; files of one subject share a role and a split (volume-level splits).
        space: the template space the voxels are aligned to (``mni152``, ``colin27``, ``inia19``) or
            ``native`` (a scan in its own space); label atlases of a space can be combined with that
            space's tissue labels.
        provenance: licence / origin in one line.
        role: ``train`` or ``heldout`` (see the module docstring for why).
        path: the file on this machine (set by :func:`find_sources`).
    """

    name: str
    package: str
    root: str
    relpath: str
    kind: Kind
    anatomy: str
    species: str
    contrast: str
    voxel_mm: tuple[float, ...]
    subject: str
    provenance: str
    role: Role = "train"
    space: str = "native"
    path: Path | None = None

    def as_json(self) -> dict[str, object]:
        """Plain-JSON description (what ``sources.json`` and model cards list)."""
        return {
            "name": self.name, "package": self.package, "path": str(self.path) if self.path else None,
            "kind": self.kind, "anatomy": self.anatomy, "species": self.species, "contrast": self.contrast,
            "voxel_mm": list(self.voxel_mm), "subject": self.subject, "space": self.space,
            "provenance": self.provenance, "role": self.role,
        }


_MNI = ("MNI152 ICBM 2009a symmetric (Fonov et al. 2011, McGill/MNI; free use with attribution), "
        "as shipped by nilearn (BSD)")
_COLIN = "Colin27 (Holmes et al. 1998, MNI), as shipped in Debian mricron-data (BSD-style, C. Rorden)"
_INIA = "INIA19 macaque template (Rohlfing et al. 2012, NIH; CC BY-NC-SA 3.0), Debian mricron-data"
_MRICRON = "Debian mricron-data (BSD-style, C. Rorden)"
_ITK = "ITK example data (Apache-2.0), Debian insighttoolkit5-examples"


def _s(name: str, package: str, root: str, relpath: str, kind: Kind, anatomy: str, species: str,
       contrast: str, voxel_mm: tuple[float, ...], subject: str, provenance: str,
       role: Role = "train", space: str = "native") -> Source:
    return Source(name, package, root, relpath, kind, anatomy, species, contrast, voxel_mm, subject,
                  provenance, role, space)


#: every real MRI source mrisr knows of, declared once (found or not on this machine)
CATALOGUE: tuple[Source, ...] = (
    _s("mni152_t1", "nilearn", "nilearn", "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz", "image",
       "head", "human", "T1", (1.0, 1.0, 1.0), "mni152", _MNI, space="mni152"),
    _s("mni152_gm", "nilearn", "nilearn", "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
       "tissue_map", "brain", "human", "GM probability", (1.0, 1.0, 1.0), "mni152", _MNI, space="mni152"),
    _s("mni152_wm", "nilearn", "nilearn", "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
       "tissue_map", "brain", "human", "WM probability", (1.0, 1.0, 1.0), "mni152", _MNI, space="mni152"),
    _s("colin27_1mm", "mricron-data", "mricron", "ch2.nii.gz", "image", "head", "human", "T1",
       (1.0, 1.0, 1.0), "colin27", _COLIN, "heldout", space="colin27"),
    _s("colin27_bet_1mm", "mricron-data", "mricron", "ch2bet.nii.gz", "image", "brain", "human", "T1",
       (1.0, 1.0, 1.0), "colin27", _COLIN + "; brain-extracted", "heldout", space="colin27"),
    _s("colin27_0p5mm", "mricron-data", "mricron", "ch2better.nii.gz", "image", "head", "human", "T1",
       (0.5, 0.5, 0.5), "colin27", _COLIN + "; 0.5 mm re-acquisition", "heldout", space="colin27"),
    _s("inia19_t1", "mricron-data", "mricron", "inia19-t1-brain.nii.gz", "image", "brain", "macaque",
       "T1", (0.5, 0.5, 0.5), "inia19", _INIA, space="inia19"),
    _s("aal", "mricron-data", "mricron", "aal.nii.gz", "labels", "brain", "human", "labels",
       (1.0, 1.0, 1.0), "colin27", "AAL (Tzourio-Mazoyer et al. 2002), drawn on Colin27; " + _MRICRON,
       "heldout", space="colin27"),
    _s("brodmann", "mricron-data", "mricron", "brodmann.nii.gz", "labels", "brain", "human", "labels",
       (1.0, 1.0, 1.0), "colin27", "Brodmann areas drawn on Colin27; " + _MRICRON, "heldout", space="colin27"),
    _s("harvard_oxford_cort", "mricron-data", "mricron", "HarvardOxford-cort-maxprob-thr0-1mm.nii.gz",
       "labels", "brain", "human", "labels", (1.0, 1.0, 1.0), "mni152_fsl",
       "Harvard-Oxford cortical atlas (FSL, MNI152 space); " + _MRICRON, space="mni152"),
    _s("jhu_white_matter", "mricron-data", "mricron", "JHU-WhiteMatter-labels-1mm.nii.gz", "labels",
       "brain", "human", "labels", (1.0, 1.0, 1.0), "mni152_fsl",
       "JHU ICBM-DTI-81 white-matter labels (Mori et al., MNI152 space); " + _MRICRON, space="mni152"),
    _s("jhu_white_matter_2mm", "mricron-data", "mricron", "JHU-WhiteMatter-labels-2mm.nii.gz", "labels",
       "brain", "human", "labels", (2.0, 2.0, 2.0), "mni152_fsl",
       "JHU ICBM-DTI-81 white-matter labels at 2 mm (MNI152 space); " + _MRICRON, space="mni152"),
    _s("aicha", "mricron-data", "mricron", "AICHAmc.nii.gz", "labels", "brain", "human", "labels",
       (2.0, 2.0, 2.0), "mni152_aicha", "AICHA atlas (Joliot et al. 2015, MNI space); " + _MRICRON, space="mni152"),
    _s("jhu189", "mricron-data", "mricron", "jhu189.nii.gz", "labels", "brain", "human", "labels",
       (1.0, 1.0, 1.0), "jhu_eve", "JHU 189-region atlas (Eve single subject, MNI space); " + _MRICRON, space="mni152"),
    _s("natbrainlab", "mricron-data", "mricron", "natbrainlab.nii.gz", "labels", "brain", "human", "labels",
       (1.0, 1.0, 1.0), "natbrainlab", "NatBrainLab tract atlas (Catani et al., MNI space); " + _MRICRON, space="mni152"),
    _s("inia19_neuromaps", "mricron-data", "mricron", "inia19-NeuroMaps.nii.gz", "labels", "brain",
       "macaque", "labels", (0.5, 0.5, 0.5), "inia19", "INIA19 NeuroMaps labels; " + _INIA, space="inia19"),
    _s("nibabel_example4d", "nibabel", "nibabel", "example4d.nii.gz", "image", "brain", "human", "T2*-EPI",
       (2.0, 2.0, 2.2), "nibabel_example4d", "nibabel test data (MIT licence)"),
    _s("nibabel_anatomical", "nibabel", "nibabel", "anatomical.nii", "image", "brain", "human", "T1",
       (2.0, 2.0, 2.0), "nibabel_anatomical", "nibabel test data (MIT licence)", "heldout"),
    _s("pydicom_mr_small", "pydicom", "pydicom", "MR_small.dcm", "image", "head", "human", "T1",
       (0.3125, 0.3125), "pydicom_mr_small", "pydicom test file (MIT licence)", "heldout"),
    _s("pydicom_abdomen", "pydicom", "pydicom", "examples_overlay.dcm", "image", "abdomen", "human", "MR",
       (0.72314, 0.72314), "pydicom_abdomen", "pydicom test file (MIT licence), abdomen / liver", "heldout"),
    _s("itk_kmeans_t1", "insighttoolkit5-examples", "itk", "KmeansTest_T1UCharRaw.nii.gz", "image", "head",
       "human", "T1", (2.0, 2.0, 3.0), "itk_kmeans", _ITK),
    _s("itk_midsagittal", "insighttoolkit5-examples", "itk", "BrainMidSagittalSlice.png", "image", "head",
       "human", "T1", (1.0, 1.0), "itk_midsagittal", _ITK + "; PNG without geometry, read as 1 mm"),
    _s("itk_fat_slice", "insighttoolkit5-examples", "itk", "FatMRISlice.png", "image", "abdomen", "human",
       "MR (fat)", (1.0, 1.0), "itk_fat", _ITK + "; PNG without geometry, read as 1 mm", "heldout"),
    _s("itk_brainweb_pd", "insighttoolkit5-examples", "itk", "BrainProtonDensitySlice.png", "image", "head",
       "human", "PD (BrainWeb simulation)", (1.0, 1.0), "colin27",
       _ITK + "; BrainWeb's phantom is built from Colin27; PNG read as 1 mm", "heldout", space="colin27"),
)

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
ITK_EXAMPLE_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")


def _package_dir(name: str) -> Path | None:
    """Folder of an installed package, found without importing it (``None`` if not installed)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def reserved_locations() -> list[tuple[Path, str]]:
    """``(folder, what)`` of every reserved data location on this machine (installed or not)."""
    found: list[tuple[Path, str]] = []
    for module, what in RESERVED_PACKAGES.items():
        folder = _package_dir(module)
        if folder is not None:
            found.append((folder, what))
    dipy_home = os.environ.get("DIPY_HOME")
    found.append((Path(dipy_home) if dipy_home else Path.home() / ".dipy", "the dipy data home"))
    # pydicom's get_testdata_file() downloads pydicom-data's files into this cache
    found.append((Path.home() / ".pydicom", "pydicom's cache of pydicom-data files"))
    return found


def check_not_reserved(path: str | Path) -> Path:
    """``path`` resolved, after checking it is not data reserved for independent evaluation.

    Refused: any path inside an installed ``pydicom_data`` or ``dipy`` package, inside the dipy data home
    (``$DIPY_HOME`` or ``~/.dipy``) or pydicom's download cache of pydicom-data (``~/.pydicom``), or
    with a folder named ``pydicom_data``, ``pydicom-data``, ``dipy``
    or ``.dipy`` on the way (a copy or another environment's install).

    Raises:
        ReservedDataError: the path is reserved (the message says by what).
    """
    p = Path(path).expanduser().resolve()
    for folder, what in reserved_locations():
        root = folder.expanduser().resolve()
        if p == root or root in p.parents:
            raise ReservedDataError(f"{path} is inside {what} ({root}), which is reserved for independent "
                                    "evaluation: it must never be listed, read, trained or tuned on")
    names = {"pydicom_data": "pydicom-data", "pydicom-data": "pydicom-data", "dipy": "dipy",
             ".dipy": "the dipy data home"}
    for part in p.parts:
        if part in names:
            raise ReservedDataError(f"{path} lies under a folder named {part!r} ({names[part]}), which is "
                                    "reserved for independent evaluation: it must never be listed, read, "
                                    "trained or tuned on")
    return p


def package_roots() -> dict[str, Path]:
    """Installed folder of each catalogue root (``nilearn``, ``nibabel``, ``pydicom``, ``mricron``, ``itk``).

    Roots that are not installed are left out. Found without importing the packages.
    """
    roots: dict[str, Path] = {}
    for key, package, sub in (("nilearn", "nilearn", "datasets/data"), ("nibabel", "nibabel", "tests/data"),
                              ("pydicom", "pydicom", "data/test_files")):
        folder = _package_dir(package)
        if folder is not None and (folder / sub).is_dir():
            roots[key] = folder / sub
    for key, folder in (("mricron", MRICRON_TEMPLATES), ("itk", ITK_EXAMPLE_DATA)):
        if folder.is_dir():
            roots[key] = folder
    return roots


def find_sources(roles: Iterable[Role] = ROLES, kinds: Iterable[Kind] | None = None,
                 catalogue: Iterable[Source] = CATALOGUE, roots: dict[str, Path] | None = None) -> list[Source]:
    """The catalogue entries installed on this machine, with ``path`` set, in catalogue order.

    Args:
        roles: keep these roles (default both).
        kinds: keep these kinds (default all).
        catalogue: the entries to look for (default :data:`CATALOGUE`).
        roots: root key -> folder (default :func:`package_roots`); tests pass their own.

    Raises:
        ReservedDataError: an entry would resolve into reserved data (never for the shipped catalogue,
            unless a package was installed inside a reserved folder).
        ValueError: an unknown role.
    """
    roles = tuple(roles)
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role(s) {bad}; expected {', '.join(ROLES)}")
    kind_set = None if kinds is None else set(kinds)
    roots = package_roots() if roots is None else roots
    found = []
    for src in catalogue:
        if src.role not in roles or (kind_set is not None and src.kind not in kind_set):
            continue
        root = roots.get(src.root)
        if root is None or not (root / src.relpath).is_file():
            continue
        found.append(replace(src, path=check_not_reserved(root / src.relpath)))
    return found


def missing_sources(catalogue: Iterable[Source] = CATALOGUE, roots: dict[str, Path] | None = None) -> list[Source]:
    """Catalogue entries that are not installed here (``make data`` installs the mricron-data ones)."""
    present = {s.name for s in find_sources(catalogue=catalogue, roots=roots)}
    return [s for s in catalogue if s.name not in present]
