"""Synthetic, realistic DICOM instances (pydicom + faker), deterministic for a seed.

``make_instance(kind, seed=..., index=...)`` builds the same data set, element for element,
every time it is called with the same arguments: faker is seeded per call, other choices come
from a ``random.Random`` seeded from a hash of (seed, kind, index), and UIDs are ``2.25.<n>``
with ``n`` taken from a SHA-256 of their inputs. The patient and study depend on the seed
only, the series on (seed, kind), the instance on (seed, kind, index), so indices 0..N of
one seed form a series. Pixel data is a periodic pattern (one row plus one pixel per period,
giving diagonal stripes) that costs a memory copy to make and can be regenerated piece by
piece by the streaming encoder.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from dataclasses import dataclass
from datetime import date
from typing import Any

from faker import Faker
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from harness import __version__
from harness.wire.constants import (
    BASIC_TEXT_SR_STORAGE,
    CR_IMAGE_STORAGE,
    CT_IMAGE_STORAGE,
    ENCAPSULATED_PDF_STORAGE,
    MG_IMAGE_STORAGE,
    MR_IMAGE_STORAGE,
    SC_IMAGE_STORAGE,
    US_IMAGE_STORAGE,
)

HARNESS_UID_ROOT = "2.25"


@dataclass(frozen=True, slots=True)
class KindSpec:
    """What one ``kind`` of instance is: its SOP class, modality and default image geometry."""

    name: str
    sop_class_uid: str
    sop_class_name: str
    modality: str
    rows: int = 0  # 0: no Pixel Data (SR, PDF)
    columns: int = 0
    frames: int = 1
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 12
    photometric: str = "MONOCHROME2"
    multiframe: bool = False  # the IOD includes the Multi-frame module
    description: str = ""

    @property
    def has_pixels(self) -> bool:
        return self.rows > 0

    def frame_bytes(self, rows: int | None = None, columns: int | None = None) -> int:
        r = self.rows if rows is None else rows
        c = self.columns if columns is None else columns
        return r * c * self.samples_per_pixel * (self.bits_allocated // 8)

    @property
    def pixel_bytes(self) -> int:
        """Pixel Data length at the default geometry (0 without pixels)."""
        return self.frame_bytes() * self.frames


class UnknownKind(KeyError, ValueError):
    """A data set kind that is not in KINDS (a typo in a scenario file, most often). A
    KeyError, as any missing key, and a ValueError, as any bad parameter value."""

    def __str__(self) -> str:
        return str(self.args[0])  # not KeyError's repr of the key


class _Kinds(dict[str, KindSpec]):
    def __missing__(self, kind: str) -> KindSpec:
        # A plain KeyError would reach a report as "KeyError: 'ctt'": say what was wrong.
        raise UnknownKind(f"unknown data set kind {kind!r}; kinds: {', '.join(sorted(self))}")


# The kinds of instance, as data: kind -> SOP class, modality, default size.
KINDS: dict[str, KindSpec] = _Kinds({
    spec.name: spec
    for spec in (
        KindSpec("tiny", CT_IMAGE_STORAGE, "CT Image Storage", "CT", 22, 20,
                 description="about 2 KB: a CT with 20x22 16-bit pixels"),
        KindSpec("ct", CT_IMAGE_STORAGE, "CT Image Storage", "CT", 512, 512,
                 description="CT slice, 512x512 16-bit (512 KiB of pixels)"),
        KindSpec("mr", MR_IMAGE_STORAGE, "MR Image Storage", "MR", 256, 256,
                 description="MR slice, 256x256 16-bit"),
        KindSpec("cr", CR_IMAGE_STORAGE, "Computed Radiography Image Storage",
                 "CR", 2500, 2048, description="chest CR, 2048x2500 16-bit (about 10 MB)"),
        KindSpec("us", US_IMAGE_STORAGE, "Ultrasound Multi-frame Image Storage",
                 "US", 480, 640, frames=6, samples_per_pixel=3, bits_allocated=8,
                 bits_stored=8, photometric="RGB", multiframe=True,
                 description="US cine loop, 6 RGB frames of 640x480"),
        KindSpec("mg", MG_IMAGE_STORAGE,
                 "Digital Mammography X-Ray Image Storage - For Presentation", "MG", 6144,
                 4096, bits_stored=14, description="mammogram, 4096x6144 16-bit (about 50 MB)"),
        KindSpec("sc", SC_IMAGE_STORAGE, "Secondary Capture Image Storage", "OT",
                 512, 512, bits_allocated=8, bits_stored=8,
                 description="secondary capture, 512x512 8-bit"),
        KindSpec("sr", BASIC_TEXT_SR_STORAGE, "Basic Text SR Storage", "SR",
                 description="Basic Text SR with a small content tree (undefined lengths)"),
        KindSpec("pdf", ENCAPSULATED_PDF_STORAGE, "Encapsulated PDF Storage", "DOC",
                 description="Encapsulated PDF holding a one-page PDF made in code"),
    )
})


# -- UIDs -----------------------------------------------------------------------------------


def _digest_int(*parts: object, bits: int = 128) -> int:
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[: bits // 8], "big")


def derive_uid(*parts: object) -> str:
    """A valid UID (``2.25.<decimal>``, at most 44 characters) derived from ``parts``."""
    return f"{HARNESS_UID_ROOT}.{_digest_int(*parts)}"


def uid_of_length(n: int, length: int) -> str:
    """The ``n``-th UID of exactly ``length`` characters under the harness root.

    For in-place patching of pre-encoded instances, where a new UID must fit the old slot.
    """
    digits = length - len(HARNESS_UID_ROOT) - 1
    if digits < 1 or length > 64:
        raise ValueError(f"no UID of length {length} under {HARNESS_UID_ROOT}")
    value = 10 ** (digits - 1) + n if digits > 1 else n
    if n < 0 or len(str(value)) != digits:
        raise ValueError(f"n={n} does not fit a UID of length {length}")
    return f"{HARNESS_UID_ROOT}.{value}"


IMPLEMENTATION_CLASS_UID = derive_uid("dicom-harness", "implementation-class")
IMPLEMENTATION_VERSION_NAME = f"HARNESS_{__version__}"[:16]


# -- pixel data -----------------------------------------------------------------------------


def pixel_period(spec: KindSpec, columns: int, offset: int, *, little: bool = True) -> bytes:
    """One period of the pixel pattern: a row plus one pixel, so rows shift diagonally.

    ``little=False`` gives the byte-swapped words of a big endian OW encoding.
    """
    n = columns + 1
    if spec.bits_allocated == 16:
        mask = (1 << spec.bits_stored) - 1
        words = array("H", (((i * (mask + 1)) // n + offset) & mask for i in range(n)))
        if not little:
            words.byteswap()
        return words.tobytes()
    if spec.samples_per_pixel == 3:
        out = bytearray()
        for i in range(n):
            ramp = (i * 256) // n
            out += bytes((ramp, 255 - ramp, (i * 7 + offset) & 0xFF))
        return bytes(out)
    return bytes((((i * 256) // n) + offset) & 0xFF for i in range(n))


def repeat_to(period: bytes, n: int) -> bytes:
    q, r = divmod(n, len(period))
    return period * q + period[:r]


def pattern_offset(seed: int, kind: str, index: int) -> int:
    return _digest_int(seed, kind, index, "pixels", bits=16)


def frames_for_pixel_bytes(kind: str, pixel_bytes: int, rows: int | None = None,
                           columns: int | None = None) -> int:
    """Whole frames of ``kind`` that fit in ``pixel_bytes`` (at least one)."""
    return max(1, pixel_bytes // KINDS[kind].frame_bytes(rows, columns))


# -- building blocks ------------------------------------------------------------------------

_faker: Faker | None = None


def _fake(seed: int) -> Faker:
    global _faker
    if _faker is None:
        _faker = Faker("en_US")
    _faker.seed_instance(seed)
    return _faker


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _tm(rng: random.Random) -> str:
    return f"{rng.randrange(7, 19):02d}{rng.randrange(60):02d}{rng.randrange(60):02d}"


@dataclass(frozen=True, slots=True)
class _Context:
    """Values shared across modules of one instance."""

    patient_name: str
    patient_id: str
    birth_date: str
    sex: str
    study_date: str
    study_time: str
    referring: str
    accession: str
    study_id: str
    study_description: str
    institution: str
    manufacturer: str
    model: str
    station: str
    serial: str
    operator: str
    sentences: tuple[str, ...]


def _context(seed: int) -> _Context:
    fake = _fake(seed)
    rng = random.Random(_digest_int(seed, "patient"))
    sex = rng.choice("FM")
    first = fake.first_name_female() if sex == "F" else fake.first_name_male()
    last = fake.last_name()
    birth = fake.date_between_dates(date(1935, 1, 1), date(2004, 12, 31))
    study = fake.date_between_dates(date(2016, 1, 1), date(2024, 12, 31))
    referring = f"{fake.last_name()}^{fake.first_name()}"
    accession = fake.bothify("A#########")
    company = fake.company()
    city = fake.city()
    operator = f"{fake.last_name()}^{fake.first_name()}"
    sentences = tuple(fake.sentence(nb_words=10) for _ in range(4))
    return _Context(
        patient_name=f"{last}^{first}".upper() if rng.random() < 0.3 else f"{last}^{first}",
        patient_id=fake.bothify("PID########"),
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        study_date=study.strftime("%Y%m%d"),
        study_time=_tm(rng),
        referring=referring,
        accession=accession,
        study_id=str(rng.randrange(1, 100000)),
        study_description=rng.choice(
            ["CHEST", "ABDOMEN PELVIS", "HEAD", "SCREENING", "FOLLOW-UP"]),
        institution=f"{city} General Hospital"[:64],
        manufacturer=company[:64],
        model=fake.bothify("Model ??-###").upper(),
        station=fake.bothify("STN????##").upper(),
        serial=fake.bothify("SN########"),
        operator=operator,
        sentences=sentences,
    )


def _common(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
            rng: random.Random) -> None:
    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = ctx.study_date
    ds.InstanceCreationTime = ctx.study_time
    ds.SOPClassUID = spec.sop_class_uid
    ds.SOPInstanceUID = derive_uid(seed, "instance", spec.name, index)
    # Patient
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    ds.PatientBirthDate = ctx.birth_date
    ds.PatientSex = ctx.sex
    # General Study
    ds.StudyInstanceUID = derive_uid(seed, "study")
    ds.StudyDate = ctx.study_date
    ds.StudyTime = ctx.study_time
    ds.ReferringPhysicianName = ctx.referring
    ds.StudyID = ctx.study_id
    ds.AccessionNumber = ctx.accession
    ds.StudyDescription = ctx.study_description
    # General Series (or the SR / Encapsulated Document series modules)
    ds.Modality = spec.modality
    ds.SeriesInstanceUID = derive_uid(seed, "series", spec.name)
    ds.SeriesNumber = 1 + list(KINDS).index(spec.name)
    ds.SeriesDescription = spec.sop_class_name[:64]
    ds.SeriesDate = ctx.study_date
    ds.SeriesTime = ctx.study_time
    ds.OperatorsName = ctx.operator
    # General Equipment
    ds.Manufacturer = ctx.manufacturer
    ds.InstitutionName = ctx.institution
    ds.StationName = ctx.station
    ds.ManufacturerModelName = ctx.model
    ds.DeviceSerialNumber = ctx.serial
    ds.SoftwareVersions = f"dicom-harness {__version__}"
    ds.InstanceNumber = index + 1
    ds.ContentDate = ctx.study_date
    ds.ContentTime = _tm(rng)


def _image(ds: Dataset, spec: KindSpec, rows: int, columns: int, frames: int) -> None:
    # Image Pixel module (Pixel Data itself is added by the caller)
    ds.SamplesPerPixel = spec.samples_per_pixel
    ds.PhotometricInterpretation = spec.photometric
    if spec.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = spec.bits_allocated
    ds.BitsStored = spec.bits_stored
    ds.HighBit = spec.bits_stored - 1
    ds.PixelRepresentation = 0
    if frames > 1 or spec.multiframe:
        ds.NumberOfFrames = frames
    ds.PatientOrientation = ["L", "P"] if spec.modality in ("CR", "SC", "OT") else ""
    ds.BurnedInAnnotation = "NO"
    ds.LossyImageCompression = "00"
    if spec.samples_per_pixel == 1:
        center = 1 << (spec.bits_stored - 1)
        ds.WindowCenter = center
        ds.WindowWidth = center * 2


def _cross_sectional(ds: Dataset, seed: int, index: int, rng: random.Random,
                     spacing: float) -> None:
    # Frame of Reference and Image Plane
    ds.FrameOfReferenceUID = derive_uid(seed, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.PixelSpacing = [spacing, spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    thickness = rng.choice([1.0, 1.25, 2.5, 5.0])
    ds.SliceThickness = thickness
    location = round(-100.0 + index * thickness, 3)
    ds.ImagePositionPatient = [-spacing * 256, -spacing * 256, location]
    ds.SliceLocation = location
    ds.AcquisitionNumber = 1


def _ct(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.BodyPartExamined = "CHEST"
    _cross_sectional(ds, seed, index, rng, 0.703125)
    ds.KVP = rng.choice([100, 120, 140])
    ds.XRayTubeCurrent = rng.randrange(100, 400)
    ds.ConvolutionKernel = "STANDARD"
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"


def _mr(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.BodyPartExamined = "HEAD"
    _cross_sectional(ds, seed, index, rng, 0.9375)
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = rng.choice([500, 2000, 4000])
    ds.EchoTime = rng.choice([10, 20, 90])
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = rng.choice([1.5, 3])
    ds.ImagedNucleus = "1H"


def _cr(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = rng.choice(["PA", "AP", "LL"])
    ds.KVP = rng.choice([110, 120, 125])
    ds.ImagerPixelSpacing = [0.15, 0.15]
    ds.PixelSpacing = [0.15, 0.15]


def _us(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"]
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.FrameTime = 33.3
    ds.CineRate = 30
    ds.RecommendedDisplayFrameRate = 30
    ds.TransducerData = ["C5-2", "", ""]


def _mg(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.BodyPartExamined = "BREAST"
    ds.ImageLaterality = rng.choice("LR")
    ds.PatientOrientation = ["P", "L"] if ds.ImageLaterality == "R" else ["A", "R"]
    ds.ImagerPixelSpacing = [0.07, 0.07]
    ds.DetectorType = "DIRECT"
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.KVP = 29
    ds.AnatomicRegionSequence = Sequence([_code("76752008", "SCT", "Breast")])
    view = _code("399162004", "SCT", "cranio-caudal")
    view.ViewModifierCodeSequence = Sequence([])
    ds.ViewCodeSequence = Sequence([view])


def _sc(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]


def _undefined_lengths(ds: Dataset) -> None:
    """Mark every sequence and item of ``ds`` as undefined length, as many writers do."""
    for elem in ds:
        if elem.VR == "SQ":
            elem.is_undefined_length = True
            for item in elem.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)


def _text_item(relationship: str, concept: Dataset, text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([concept])
    item.TextValue = text
    return item


def _container(concept: Dataset, children: list[Dataset], relationship: str = "") -> Dataset:
    item = Dataset()
    if relationship:
        item.RelationshipType = relationship
    item.ValueType = "CONTAINER"
    item.ConceptNameCodeSequence = Sequence([concept])
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(children)
    return item


def _sr(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
        rng: random.Random) -> None:
    # SR Document Series, SR Document General, SR Document Content (TID 2000 shape)
    ds.ReferencedPerformedProcedureStepSequence = Sequence([])
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = Sequence([])
    findings = _container(_code("121070", "DCM", "Findings"), [
        _text_item("CONTAINS", _code("121071", "DCM", "Finding"), ctx.sentences[0]),
        _text_item("CONTAINS", _code("121071", "DCM", "Finding"), ctx.sentences[1]),
    ], "CONTAINS")
    impressions = _container(_code("121072", "DCM", "Impressions"), [
        _text_item("CONTAINS", _code("121073", "DCM", "Impression"), ctx.sentences[2]),
    ], "CONTAINS")
    root = _container(_code("18748-4", "LN", "Diagnostic Imaging Report"),
                      [findings, impressions])
    for keyword in ("ValueType", "ConceptNameCodeSequence", "ContinuityOfContent",
                    "ContentSequence"):
        setattr(ds, keyword, root[keyword].value)
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2000"
    ds.ContentTemplateSequence = Sequence([template])
    _undefined_lengths(ds)


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def tiny_pdf(title: str, lines: list[str]) -> bytes:
    """A small, valid one-page PDF (catalog, pages, page, content, Helvetica, xref)."""
    text = [f"BT /F1 16 Tf 72 720 Td 20 TL ({_pdf_escape(title)}) Tj /F1 11 Tf"]
    text += [f"T* ({_pdf_escape(line)}) Tj" for line in lines]
    stream = "\n".join([*text, "ET"])
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1', 'replace'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1", "replace")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode("ascii")
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode("ascii")
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode("ascii")
    return bytes(out)


def _pdf(ds: Dataset, spec: KindSpec, ctx: _Context, seed: int, index: int,
         rng: random.Random) -> None:
    # SC Equipment and Encapsulated Document modules
    ds.ConversionType = "WSD"
    ds.AcquisitionDateTime = ctx.study_date + ctx.study_time
    ds.BurnedInAnnotation = "YES"
    ds.DocumentTitle = "Radiology report"
    ds.ConceptNameCodeSequence = Sequence([])
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    pdf = tiny_pdf("Radiology report", [
        f"Patient: {ctx.patient_name.replace('^', ', ')}  ID: {ctx.patient_id}",
        f"Study date: {ctx.study_date}  Accession: {ctx.accession}",
        *ctx.sentences,
    ])
    ds.EncapsulatedDocumentLength = len(pdf)
    # OB values are even on the wire; pad here so a decoded copy compares equal.
    ds.add_new(0x00420011, "OB", pdf + b"\x00" * (len(pdf) & 1))


_MODULES: dict[str, Any] = {
    "tiny": _ct, "ct": _ct, "mr": _mr, "cr": _cr, "us": _us, "mg": _mg, "sc": _sc,
    "sr": _sr, "pdf": _pdf,
}


def build_instance(
    kind: str = "ct",
    *,
    seed: int = 0,
    index: int = 0,
    rows: int | None = None,
    columns: int | None = None,
    frames: int | None = None,
    with_pixels: bool = True,
) -> Dataset:
    """``make_instance`` with the option to leave Pixel Data out (for the streaming encoder)."""
    try:
        spec = KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}") from None
    ctx = _context(seed)
    rng = random.Random(_digest_int(seed, kind, index))
    ds = Dataset()
    _common(ds, spec, ctx, seed, index, rng)
    r = spec.rows if rows is None else rows
    c = spec.columns if columns is None else columns
    f = spec.frames if frames is None else frames
    if spec.has_pixels:
        if r <= 0 or c <= 0 or f <= 0 or r > 0xFFFF or c > 0xFFFF:
            raise ValueError(f"bad geometry rows={r} columns={c} frames={f}")
        _image(ds, spec, r, c, f)
    _MODULES[kind](ds, spec, ctx, seed, index, rng)
    if spec.has_pixels and with_pixels:
        period = pixel_period(spec, c, pattern_offset(seed, kind, index))
        n = spec.frame_bytes(r, c) * f
        value = repeat_to(period, n)
        if n & 1:
            value += b"\x00"
        ds.add_new(0x7FE00010, "OW" if spec.bits_allocated > 8 else "OB", value)
    return ds


def make_instance(
    kind: str = "ct",
    *,
    seed: int = 0,
    index: int = 0,
    rows: int | None = None,
    columns: int | None = None,
    frames: int | None = None,
) -> Dataset:
    """A synthetic instance of ``kind`` (a key of ``KINDS``), the same for the same arguments.

    ``rows``/``columns``/``frames`` override the kind's default geometry (image kinds only);
    more than one frame on a single-frame kind adds Number of Frames.
    """
    return build_instance(kind, seed=seed, index=index, rows=rows, columns=columns,
                          frames=frames)


def sop_class_for(kind: str) -> str:
    return KINDS[kind].sop_class_uid
