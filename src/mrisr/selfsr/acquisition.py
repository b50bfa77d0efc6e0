"""What the thick-slice acquisition of a scan was: through-plane axis, slice spacing, thickness, profile.

The slice spacing is the grid's (the header's voxel size along the through-plane axis); the slice
thickness defaults to the header's (DICOM ``SliceThickness`` when the slices are DICOM frames, else
``spacing - gap``: a NIfTI ``pixdim`` is the spacing); the profile defaults to a Gaussian whose FWHM is the
thickness. ``thickness + gap = spacing`` (a negative gap is an overlap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from mrisr.degrade.slice_profile import PROFILES
from mrisr.errors import ConfigError, InputError
from mrisr.io.volume import Volume

#: Through-plane spacing must exceed the finest in-plane spacing by this factor for there to be anything to learn.
MIN_ANISOTROPY = 1.2


@dataclass(frozen=True)
class Acquisition:
    """A scan's thick-slice acquisition (all lengths in mm).

    Attributes:
        axis: the through-plane (slice) axis of the volume, 0-2.
        spacing: slice spacing (centre to centre).
        thickness: profile FWHM (gaussian) or width (rect).
        profile: ``"gaussian"`` or ``"rect"``.
        in_plane: ``((axis, spacing), (axis, spacing))`` of the two in-plane axes, in axis order.
    """

    axis: int
    spacing: float
    thickness: float
    profile: str
    in_plane: tuple[tuple[int, float], tuple[int, float]]

    @property
    def gap(self) -> float:
        return self.spacing - self.thickness

    def ratio(self, in_plane_spacing: float) -> float:
        """Fine voxels of ``in_plane_spacing`` mm per slice."""
        return self.spacing / in_plane_spacing

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["in_plane"] = [list(p) for p in self.in_plane]
        d["gap"] = self.gap
        return d


def _header_thickness(vol: Volume, axis: int) -> float | None:
    """DICOM ``SliceThickness`` (mm) of a series whose slices lie along ``axis``, else ``None``."""
    headers = vol.meta.get("dicom_headers")
    if axis != 2 or not headers:
        return None
    try:
        value = float(getattr(headers[0], "SliceThickness", None) or 0.0)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def through_plane_axis(vol: Volume, axis: int | None = None) -> int:
    """``axis`` checked, or the axis with the largest spacing (refused when two axes tie for it).

    Raises:
        InputError: not a 3D scan, or no single coarsest axis.
    """
    if len(vol.spatial_shape) != 3 or vol.ndim != 3:
        raise InputError(f"self-supervised super-resolution needs a 3D scan, got shape {vol.shape}")
    sp = [float(s) for s in vol.spacing[:3]]
    if axis is not None:
        if not -3 <= axis < 3:
            raise ConfigError(f"--axis {axis} is out of range for 3 spatial axes")
        return axis % 3
    top = max(sp)
    coarsest = [a for a, s in enumerate(sp) if s > top / 1.01]
    if len(coarsest) != 1:
        raise InputError(f"spacing {' x '.join(f'{s:.3g}' for s in sp)} mm has no single coarsest axis; "
                         "name the through-plane axis with --axis")
    return coarsest[0]


def acquisition_of(vol: Volume, *, axis: int | None = None, thickness: float | None = None,
                   gap: float | None = None, profile: str = "gaussian") -> Acquisition:
    """The acquisition of ``vol``, header values overridden by the options given.

    Raises:
        InputError: the scan is not anisotropic enough (through-plane spacing below
            :data:`MIN_ANISOTROPY` times the in-plane one) or not 3D.
        ConfigError: a non-positive thickness, a profile not in ``PROFILES``, thickness + gap != spacing.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown slice profile {profile!r}; choose from {', '.join(PROFILES)}")
    ax = through_plane_axis(vol, axis)
    sp = [float(s) for s in vol.spacing[:3]]
    spacing = sp[ax]
    in_plane = tuple((a, sp[a]) for a in range(3) if a != ax)
    finest = min(s for _, s in in_plane)
    if spacing < MIN_ANISOTROPY * finest:
        raise InputError(f"slice spacing {spacing:.3g} mm along axis {ax} is not coarser than the in-plane "
                         f"{finest:.3g} mm by {MIN_ANISOTROPY}x: nothing to learn from the in-plane axes")
    if thickness is not None and gap is not None and abs(thickness + gap - spacing) > 0.01 * spacing:
        raise ConfigError(f"--slice-thickness {thickness:g} + --gap {gap:g} mm must equal the slice spacing "
                          f"{spacing:.4g} mm of the header")
    if thickness is None:
        thickness = spacing - gap if gap is not None else (_header_thickness(vol, ax) or spacing)
    if not thickness > 0:
        raise ConfigError(f"slice thickness must be positive, got {thickness:g} mm (gap {gap} >= spacing "
                          f"{spacing:.4g} mm?)")
    return Acquisition(ax, spacing, float(thickness), profile, (in_plane[0], in_plane[1]))
