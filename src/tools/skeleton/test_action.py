
    def test_double(self):
        reply = self.m.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><@name@ xmlns="%s"><double>'
            '<number>21</number></double></@name@></action>' % NS))
        self.assertTrue(reply.ok, reply.xml)
        self.assertEqual(ET.fromstring(reply.xml).findtext(".//{%s}result" % NS), "42")
