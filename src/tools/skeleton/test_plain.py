
    def test_configuration_is_stored(self):
        greeting = "hello %s" % uuid.uuid4().hex[:8]
        self.m.edit_config(target="running", config=(
            '<config><@name@ xmlns="%s"><greeting>%s</greeting></@name@></config>'
            % (NS, greeting)))
        reply = self.m.get_config(source="running", filter=("subtree",
            '<@name@ xmlns="%s"/>' % NS))
        self.assertEqual(ET.fromstring(reply.data_xml).findtext(
            ".//{%s}greeting" % NS), greeting)
