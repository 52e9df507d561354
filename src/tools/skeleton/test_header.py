"""Tests of the @name@ package, against a running pyvmd that serves it:

    pyvmd serve --packages @packages@ &
    python3 -m unittest discover -s @dir@/test -v

The server is 127.0.0.1:830 as admin/admin unless PYVMD_HOST, NETCONF_PORT, NETCONF_USER and
NETCONF_PASSWORD say otherwise. Needs ncclient (pip install ncclient).
"""

import os
import time
import unittest
import uuid
import xml.etree.ElementTree as ET

from ncclient import manager
from ncclient.xml_ import to_ele

NS = "http://example.com/@name@"
NCS_NS = "http://tail-f.com/ns/ncs"


def connect():
    return manager.connect(
        host=os.environ.get("PYVMD_HOST", "127.0.0.1"),
        port=int(os.environ.get("NETCONF_PORT", "830")),
        username=os.environ.get("NETCONF_USER", "admin"),
        password=os.environ.get("NETCONF_PASSWORD", "admin"),
        hostkey_verify=False, look_for_keys=False, allow_agent=False, timeout=60)


class PackageTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.m = connect()

    @classmethod
    def tearDownClass(cls):
        cls.m.close_session()

    def test_package_is_up(self):
        reply = self.m.get(filter=("subtree",
            '<packages xmlns="%s"><package><name>@name@</name><oper-status/></package>'
            '</packages>' % NCS_NS))
        status = ET.fromstring(reply.data_xml).find(
            ".//{%s}package/{%s}oper-status" % (NCS_NS, NCS_NS))
        self.assertIsNotNone(status, reply.data_xml)
        self.assertEqual([c.tag for c in status], ["{%s}up" % NCS_NS], reply.data_xml)
