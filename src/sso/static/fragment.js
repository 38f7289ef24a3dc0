// The SSO callback page for response_mode=fragment: the IdP's answer is in
// the URL fragment, which never reaches the server. Post it, from this same
// origin, to POST /login/callback, and take it out of the address bar.
(function () {
  'use strict';
  var form = document.getElementById('callback');
  var status = document.getElementById('status');
  var params = new URLSearchParams(window.location.hash.slice(1));
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, '', window.location.pathname);
  }
  var count = 0;
  params.forEach(function (value, key) {
    var input = document.createElement('input');
    input.type = 'hidden';
    input.name = key;
    input.value = value;
    form.appendChild(input);
    count++;
  });
  if (count === 0) {
    status.textContent = 'There is no sign-in answer on this page. Start again from the sign-in page.';
    return;
  }
  form.submit();
})();
