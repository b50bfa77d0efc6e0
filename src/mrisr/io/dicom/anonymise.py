"""De-identification: the DICOM Basic Application Level Confidentiality Profile (PS3.15 Annex E, Table E.1-1).

:data:`BASIC_PROFILE` is the attribute table, written once as data: keyword -> action, with the
profile's action codes

* ``"X"``: remove the attribute;
* ``"Z"``: replace it by a zero-length value (the attribute is Type 2: it must be present);
* ``"U"``: replace a UID by a new one, the same new UID for every occurrence of the same old UID
  (so that the files of a series keep pointing at one study, series and frame of reference).

Where the standard allows several actions (``X/Z``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) the table holds the
one mrisr applies: the attribute is removed when the MR image IOD allows it, else emptied (no attribute
of the table is Type 1 in an MR image, so no dummy value ``"D"`` is needed). Beyond the table, :func:`anonymise_dataset` removes every private attribute and the
overlay data and comments (groups ``60xx``, which may hold burnt-in text), recurses into the sequences it
keeps, and records ``PatientIdentityRemoved = YES`` with ``DeidentificationMethod`` and the coded method
(DCM 113100, "Basic Application Confidentiality Profile").

Pixel data is not inspected: burnt-in annotations in the image itself (secondary captures, screenshots)
are not removed; MR images from a scanner carry none.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Literal

from mrisr import __version__

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from mrisr.io.volume import Volume

Action = Literal["X", "Z", "U"]

#: PS3.15 Annex E Table E.1-1, Basic Profile column: attribute keyword -> action (see the module docstring).
BASIC_PROFILE: dict[str, Action] = {
    # --- patient
    "PatientName": "Z", "PatientID": "Z", "PatientBirthDate": "Z", "PatientSex": "Z",
    "PatientBirthTime": "X", "PatientAge": "X", "PatientSize": "X", "PatientWeight": "X",
    "PatientAddress": "X", "PatientTelephoneNumbers": "X", "PatientTelecomInformation": "X",
    "OtherPatientIDs": "X", "OtherPatientIDsSequence": "X", "OtherPatientNames": "X",
    "PatientBirthName": "X", "PatientMotherBirthName": "X", "IssuerOfPatientID": "X",
    "IssuerOfPatientIDQualifiersSequence": "X", "MedicalRecordLocator": "X", "MilitaryRank": "X",
    "BranchOfService": "X", "EthnicGroup": "X", "Occupation": "X", "PatientReligiousPreference": "X",
    "CountryOfResidence": "X", "RegionOfResidence": "X", "PatientComments": "X",
    "AdditionalPatientHistory": "X", "MedicalAlerts": "X", "Allergies": "X", "PregnancyStatus": "X",
    "SmokingStatus": "X", "LastMenstrualDate": "X", "PatientState": "X", "PatientSexNeutered": "X",
    "PatientInsurancePlanCodeSequence": "X", "PatientPrimaryLanguageCodeSequence": "X",
    "PatientPrimaryLanguageModifierCodeSequence": "X", "ResponsiblePerson": "X",
    "ResponsiblePersonRole": "X", "ResponsibleOrganization": "X", "ReferencedPatientSequence": "X",
    "ReferencedPatientPhotoSequence": "X", "PatientTransportArrangements": "X",
    "SpecialNeeds": "X", "PertinentDocumentsSequence": "X", "PersonName": "X",
    # --- study / visit / request
    "StudyInstanceUID": "U", "StudyDate": "Z", "StudyTime": "Z", "StudyID": "Z", "AccessionNumber": "Z",
    "ReferringPhysicianName": "Z", "ReferringPhysicianAddress": "X", "ReferringPhysicianTelephoneNumbers": "X",
    "ReferringPhysicianIdentificationSequence": "X", "StudyDescription": "X", "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X", "NameOfPhysiciansReadingStudy": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X", "RequestingPhysician": "X",
    "RequestingService": "X", "RequestedProcedureDescription": "X", "RequestedProcedureID": "X",
    "RequestAttributesSequence": "X", "ReasonForStudy": "X", "ReasonForTheRequestedProcedure": "X",
    "AdmittingDiagnosesDescription": "X", "AdmittingDiagnosesCodeSequence": "X", "AdmissionID": "X",
    "IssuerOfAdmissionID": "X", "IssuerOfAdmissionIDSequence": "X", "ServiceEpisodeID": "X",
    "ServiceEpisodeDescription": "X", "CurrentPatientLocation": "X", "PatientInstitutionResidence": "X",
    "ReferencedStudySequence": "X", "ReferencedPerformedProcedureStepSequence": "X",
    "ImagingServiceRequestComments": "X", "RequestedProcedureComments": "X", "OrderEnteredBy": "X",
    "OrderEntererLocation": "X", "OrderCallbackPhoneNumber": "X", "PlacerOrderNumberImagingServiceRequest": "X",
    "FillerOrderNumberImagingServiceRequest": "X", "ConsultingPhysicianName": "X",
    "StudyIDIssuer": "X", "InterpretationAuthor": "X",
    # --- series / procedure step
    "SeriesInstanceUID": "U", "SeriesDate": "X", "SeriesTime": "X", "SeriesDescription": "X",
    "ProtocolName": "X", "PerformingPhysicianName": "X", "PerformingPhysicianIdentificationSequence": "X",
    "OperatorsName": "X", "OperatorIdentificationSequence": "X", "PerformedProcedureStepID": "X",
    "PerformedProcedureStepDescription": "X", "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X", "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X", "PerformedLocation": "X", "PerformedStationName": "X",
    "PerformedStationAETitle": "X", "ScheduledProcedureStepDescription": "X", "ScheduledProcedureStepID": "X",
    "ScheduledPerformingPhysicianName": "X", "ScheduledStationName": "X", "ScheduledStationAETitle": "X",
    "CommentsOnThePerformedProcedureStep": "X", "ReferencedImageSequence": "X", "SourceImageSequence": "X",
    "DerivationDescription": "X", "AcquisitionComments": "X", "ContributionDescription": "X",
    "AcquisitionDeviceProcessingDescription": "X",
    # --- image / instance
    "SOPInstanceUID": "U", "MediaStorageSOPInstanceUID": "U", "FrameOfReferenceUID": "U",
    "ReferencedSOPInstanceUID": "U", "ReferencedFrameOfReferenceUID": "U", "RelatedFrameOfReferenceUID": "U",
    "SynchronizationFrameOfReferenceUID": "U", "ConcatenationUID": "U", "DimensionOrganizationUID": "U",
    "IrradiationEventUID": "U", "InstanceCreatorUID": "U", "StorageMediaFileSetUID": "U",
    "DoseReferenceUID": "U", "FiducialUID": "U", "TransactionUID": "U", "DeviceUID": "U",
    "ContentDate": "Z", "ContentTime": "Z", "AcquisitionDate": "X", "AcquisitionTime": "X",
    "AcquisitionDateTime": "X", "InstanceCreationDate": "X", "InstanceCreationTime": "X",
    "ImageComments": "X", "FrameComments": "X", "TextComments": "X", "TextString": "X",
    "ContentCreatorName": "X", "ContentCreatorIdentificationCodeSequence": "X", "ContentSequence": "X",
    "VerifyingObserverName": "X", "VerifyingObserverSequence": "X", "PersonIdentificationCodeSequence": "X",
    "OriginalAttributesSequence": "X", "ModifiedAttributesSequence": "X", "DigitalSignaturesSequence": "X",
    "ContrastBolusAgent": "Z", "RequestedContrastAgent": "X",
    "DistributionName": "X", "DistributionAddress": "X", "GraphicAnnotationSequence": "X",
    "IconImageSequence": "X",
    # --- equipment
    "InstitutionName": "X", "InstitutionAddress": "X", "InstitutionalDepartmentName": "X",
    "InstitutionCodeSequence": "X", "InstitutionalDepartmentTypeCodeSequence": "X", "StationName": "X",
    "DeviceSerialNumber": "X", "DetectorID": "X", "GantryID": "X", "PlateID": "X", "CassetteID": "X",
    "SoftwareVersions": "X", "UniqueDeviceIdentifier": "X", "DeviceDescription": "X",
    "ModifyingDeviceID": "X", "ModifyingDeviceManufacturer": "X", "SourceApplicationEntityTitle": "X",
    "ScheduledStudyLocation": "X", "ScheduledStudyLocationAETitle": "X",
}

#: ``Volume.meta`` entries that identify a patient or an exam (dropped by :func:`anonymised_volume`).
IDENTIFYING_META = ("patient_id", "series_description", "series_uid", "study_uid", "source")

#: PS3.15 Annex E, Table CID 7050: the code of the Basic Application Confidentiality Profile.
PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")


def deidentification_method() -> str:
    """``DeidentificationMethod`` text written into every de-identified file (LO, at most 64 chars)."""
    return f"DICOM PS3.15 E.1 Basic Profile (mrisr {__version__})"[:64]


def _new_uid(old: str, uids: MutableMapping[str, str]) -> str:
    from pydicom.uid import generate_uid

    if old not in uids:
        uids[old] = str(generate_uid())
    return uids[old]


def anonymise_dataset(ds: Dataset, uids: MutableMapping[str, str]) -> Dataset:
    """De-identify ``ds`` in place by :data:`BASIC_PROFILE` and return it.

    Args:
        ds: a data set (file meta included when present: its MediaStorageSOPInstanceUID is mapped too).
        uids: old UID -> new UID, shared by every file of a series (filled as new UIDs are made).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    _apply(ds, uids)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _apply(meta, uids)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = deidentification_method()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = PROFILE_CODE
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    return ds


def _apply(ds: Dataset, uids: MutableMapping[str, str]) -> None:
    ds.remove_private_tags()
    for elem in list(ds):
        tag = elem.tag
        if 0x6000 <= tag.group <= 0x601E and tag.group % 2 == 0 and tag.element in (0x3000, 0x4000):
            del ds[tag]  # overlay data / comments
            continue
        action = BASIC_PROFILE.get(elem.keyword)
        if action == "X":
            del ds[tag]
        elif action == "Z":
            elem.value = None if elem.VR == "SQ" else ""
        elif action == "U":
            if elem.VM > 1:
                elem.value = [_new_uid(str(v), uids) for v in elem.value]
            elif elem.value:
                elem.value = _new_uid(str(elem.value), uids)
        elif elem.VR == "SQ" and elem.value is not None:
            for item in elem.value:
                _apply(item, uids)


def anonymised_volume(volume: Volume) -> Volume:
    """``volume`` with de-identified copies of its DICOM headers (one UID mapping for all of them) and
    without the identifying entries of its ``meta`` (patient ID, series description, study and series UIDs,
    source path), ready for :func:`mrisr.io.dicom.writing.write_dicom_series`."""
    import copy

    uids: dict[str, str] = {}
    headers = [anonymise_dataset(copy.deepcopy(h), uids) for h in volume.meta.get("dicom_headers") or []]
    out = volume.with_data(volume.data, dicom_headers=headers)
    for key in IDENTIFYING_META:
        out.meta.pop(key, None)
    return out
