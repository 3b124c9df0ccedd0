"""The stack deployed from the installed collection answers over HTTPS."""
NAME = "guestbook.test"
CERT = "/etc/nginx/tls/%s.crt" % NAME
HTTPS = "curl -sS --resolve {0}:443:127.0.0.1 --cacert {1} ".format(NAME, CERT)


def test_https_serves_the_app_deployed_from_the_tarball(host):
    page = host.check_output(HTTPS + "https://%s/", NAME)
    assert "<h1>Galaxy guestbook</h1>" in page
    assert "stored in postgresql." in page


def test_http_redirects_to_https(host):
    out = host.check_output(
        "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/")
    assert out == "301 https://%s/" % NAME
