
    def setUp(self):
        self.instance = "test-%s" % uuid.uuid4().hex[:8]

    def tearDown(self):
        self.m.edit_config(target="running", config=(
            '<config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">'
            '<services xmlns="%s"><@name@ xmlns="%s" nc:operation="remove"><name>%s</name>'
            '</@name@></services></config>' % (NCS_NS, NS, self.instance)))

    def result(self):
        reply = self.m.get_config(source="running", filter=("subtree",
            '<@name@-result xmlns="%s"><entry><name>%s</name></entry></@name@-result>'
            % (NS, self.instance)))
        return ET.fromstring(reply.data_xml).findtext(".//{%s}entry/{%s}value" % (NS, NS))

    def test_create_writes_the_result_and_delete_removes_it(self):
        self.m.edit_config(target="running", config=(
            '<config><services xmlns="%s"><@name@ xmlns="%s"><name>%s</name>'
            '<value>blue</value></@name@></services></config>' % (NCS_NS, NS, self.instance)))
        self.assertEqual(self.result(), "blue")
        self.tearDown()
        self.assertIsNone(self.result())
