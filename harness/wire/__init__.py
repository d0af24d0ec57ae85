"""Sans-I/O DICOM Upper Layer and DIMSE codec.

Bytes in, typed objects plus findings out; objects in, bytes out. No sockets, no asyncio,
and no imports from the rest of the harness, in the spirit of h11.
"""
